//! Access rights of a completed walk, and the permission rules (Intel SDM
//! vol. 3, 4.6 "Access Rights"; 4.7 "Page-Fault Exceptions").
//!
//! The same function decides for the walker and for cached sptes, so a
//! fault taken from the shadow cache is the fault the walk would give.

use crate::ctx::{
    Access, AccessKind, PagingCtx, PagingMode, PFERR_FETCH, PFERR_PRESENT, PFERR_RSVD, PFERR_USER,
    PFERR_WRITE,
};
use core::fmt;

/// The combined rights of every level of a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rights {
    /// U/S = 1 at every level: a user-mode address.
    pub user: bool,
    /// R/W = 1 at every level.
    pub write: bool,
    /// XD = 1 at some level (only with EFER.NXE).
    pub nx: bool,
}

impl Rights {
    /// Everything allowed (paging off, or the start of a walk).
    pub const ALL: Rights = Rights {
        user: true,
        write: true,
        nx: false,
    };
}

/// Which rule a page fault comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultReason {
    /// P = 0 in the entry of this level.
    NotPresent {
        /// 5..=1
        level: u8,
    },
    /// A reserved bit is set in the entry of this level.
    ReservedBit {
        /// 5..=1
        level: u8,
    },
    /// The entry of this level lies outside guest RAM; the walk cannot read
    /// it (delivered like a not-present fault).
    TableNotInRam {
        /// 5..=1
        level: u8,
    },
    /// A user-mode access to a supervisor page.
    UserToSupervisor,
    /// A write to a read-only page from user mode, or from supervisor mode
    /// with CR0.WP = 1.
    ReadOnly,
    /// An instruction fetch from a page with XD = 1.
    NoExecute,
    /// A supervisor fetch from a user page with CR4.SMEP.
    Smep,
    /// A supervisor data access to a user page with CR4.SMAP and AC = 0 (or
    /// an implicit access).
    Smap,
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultReason::NotPresent { level } => write!(f, "the level {level} entry is not present"),
            FaultReason::ReservedBit { level } => {
                write!(f, "the level {level} entry has a reserved bit set")
            }
            FaultReason::TableNotInRam { level } => {
                write!(f, "the level {level} table is not in guest RAM, so the walk cannot read it")
            }
            FaultReason::UserToSupervisor => {
                f.write_str("user-mode access to a supervisor page (U/S=0 at some level)")
            }
            FaultReason::ReadOnly => f.write_str(
                "write to a read-only page (R/W=0 at some level; from supervisor mode because CR0.WP=1)",
            ),
            FaultReason::NoExecute => f.write_str("instruction fetch from a no-execute page (XD=1, EFER.NXE=1)"),
            FaultReason::Smep => f.write_str("supervisor instruction fetch from a user page with CR4.SMEP=1"),
            FaultReason::Smap => f.write_str(
                "supervisor data access to a user page with CR4.SMAP=1 (EFLAGS.AC=0 or an implicit access)",
            ),
        }
    }
}

/// Whether `access` is allowed on a page with `rights` under `ctx`.
pub fn check_access(rights: Rights, ctx: &PagingCtx, access: Access) -> Result<(), FaultReason> {
    let user = access.is_user();
    // SMAP applies to supervisor data accesses to user pages, unless an
    // explicit access is made with EFLAGS.AC = 1.
    let smap_blocks = !user && rights.user && ctx.smap() && (access.implicit || !ctx.ac);
    match access.kind {
        AccessKind::Read => {
            if user && !rights.user {
                return Err(FaultReason::UserToSupervisor);
            }
            if smap_blocks {
                return Err(FaultReason::Smap);
            }
        }
        AccessKind::Write => {
            if user && !rights.user {
                return Err(FaultReason::UserToSupervisor);
            }
            if smap_blocks {
                return Err(FaultReason::Smap);
            }
            if !rights.write && (user || ctx.wp()) {
                return Err(FaultReason::ReadOnly);
            }
        }
        AccessKind::Fetch => {
            if user && !rights.user {
                return Err(FaultReason::UserToSupervisor);
            }
            if !user && rights.user && ctx.smep() {
                return Err(FaultReason::Smep);
            }
            if rights.nx && ctx.nxe() {
                return Err(FaultReason::NoExecute);
            }
        }
    }
    Ok(())
}

/// The #PF error code for `access` under `ctx`: `present` for protection
/// and reserved-bit faults, `rsvd` for the latter.
pub fn error_code(ctx: &PagingCtx, access: Access, present: bool, rsvd: bool) -> u32 {
    let mut ec = 0;
    if present || rsvd {
        ec |= PFERR_PRESENT;
    }
    if rsvd {
        ec |= PFERR_RSVD;
    }
    if access.kind == AccessKind::Write {
        ec |= PFERR_WRITE;
    }
    if access.is_user() {
        ec |= PFERR_USER;
    }
    // I/D is reported only when fetches can fault for being fetches.
    let wide = !matches!(ctx.mode(), PagingMode::Off | PagingMode::Bits32);
    if access.kind == AccessKind::Fetch && (ctx.smep() || (wide && ctx.nxe())) {
        ec |= PFERR_FETCH;
    }
    ec
}

/// The error code for a fault of `reason`.
pub fn error_code_for(ctx: &PagingCtx, access: Access, reason: FaultReason) -> u32 {
    match reason {
        FaultReason::NotPresent { .. } | FaultReason::TableNotInRam { .. } => {
            error_code(ctx, access, false, false)
        }
        FaultReason::ReservedBit { .. } => error_code(ctx, access, true, true),
        _ => error_code(ctx, access, true, false),
    }
}
