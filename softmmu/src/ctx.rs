//! What a translation depends on: the paging context and the access.

use crate::addr::Gva;

/// CR0.WP: supervisor writes honour R/W.
pub const CR0_WP: u64 = 1 << 16;
/// CR0.PG: paging on.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PSE: 4 MiB pages in 32-bit paging.
pub const CR4_PSE: u64 = 1 << 4;
/// CR4.PAE: 64-bit entries.
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.PGE: global pages.
pub const CR4_PGE: u64 = 1 << 7;
/// CR4.LA57: 5-level paging.
pub const CR4_LA57: u64 = 1 << 12;
/// CR4.PCIDE: process-context identifiers.
pub const CR4_PCIDE: u64 = 1 << 17;
/// CR4.SMEP: no supervisor fetches from user pages.
pub const CR4_SMEP: u64 = 1 << 20;
/// CR4.SMAP: no supervisor data accesses to user pages (unless AC).
pub const CR4_SMAP: u64 = 1 << 21;
/// EFER.LMA: long mode active (4- or 5-level paging).
pub const EFER_LMA: u64 = 1 << 10;
/// EFER.NXE: the XD bit exists.
pub const EFER_NXE: u64 = 1 << 11;

/// #PF error code: the page was present (protection or reserved-bit fault).
pub const PFERR_PRESENT: u32 = 1 << 0;
/// #PF error code: a write.
pub const PFERR_WRITE: u32 = 1 << 1;
/// #PF error code: a user-mode access.
pub const PFERR_USER: u32 = 1 << 2;
/// #PF error code: a reserved bit was set in a paging-structure entry.
pub const PFERR_RSVD: u32 = 1 << 3;
/// #PF error code: an instruction fetch (only with NXE+PAE, or SMEP).
pub const PFERR_FETCH: u32 = 1 << 4;
/// #PF error code: protection keys (never set: PKE is not emulated).
pub const PFERR_PK: u32 = 1 << 5;

/// The control-register state a translation depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagingCtx {
    /// CR0 (PG, WP).
    pub cr0: u64,
    /// CR3 (root; PCID in bits 11:0 when CR4.PCIDE). Bit 63 is ignored.
    pub cr3: u64,
    /// CR4 (PSE, PAE, PGE, LA57, PCIDE, SMEP, SMAP).
    pub cr4: u64,
    /// EFER (LMA, NXE).
    pub efer: u64,
    /// EFLAGS.AC
    pub ac: bool,
}

/// Which paging structure format is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PagingMode {
    /// CR0.PG = 0: linear = physical.
    Off,
    /// 32-bit paging (CR4.PAE = 0).
    Bits32,
    /// PAE paging (CR4.PAE = 1, EFER.LMA = 0).
    Pae,
    /// 4-level paging.
    Level4,
    /// 5-level paging (CR4.LA57).
    Level5,
}

impl PagingCtx {
    /// The paging mode these registers select.
    pub fn mode(&self) -> PagingMode {
        if self.cr0 & CR0_PG == 0 {
            PagingMode::Off
        } else if self.cr4 & CR4_PAE == 0 {
            PagingMode::Bits32
        } else if self.efer & EFER_LMA == 0 {
            PagingMode::Pae
        } else if self.cr4 & CR4_LA57 != 0 {
            PagingMode::Level5
        } else {
            PagingMode::Level4
        }
    }

    /// CR0.WP
    pub fn wp(&self) -> bool {
        self.cr0 & CR0_WP != 0
    }

    /// EFER.NXE, meaningful only with 64-bit entries.
    pub fn nxe(&self) -> bool {
        self.efer & EFER_NXE != 0 && !matches!(self.mode(), PagingMode::Off | PagingMode::Bits32)
    }

    /// CR4.SMEP
    pub fn smep(&self) -> bool {
        self.cr4 & CR4_SMEP != 0
    }

    /// CR4.SMAP
    pub fn smap(&self) -> bool {
        self.cr4 & CR4_SMAP != 0
    }

    /// CR4.PSE (32-bit paging only; the other modes always have large pages).
    pub fn pse(&self) -> bool {
        self.cr4 & CR4_PSE != 0
    }

    /// CR4.PGE
    pub fn pge(&self) -> bool {
        self.cr4 & CR4_PGE != 0
    }

    /// The current PCID (0 unless CR4.PCIDE in 4/5-level paging).
    pub fn pcid(&self) -> u16 {
        if self.cr4 & CR4_PCIDE != 0
            && matches!(self.mode(), PagingMode::Level4 | PagingMode::Level5)
        {
            (self.cr3 & 0xfff) as u16
        } else {
            0
        }
    }
}

/// The kind of memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Fetch,
}

/// One memory access to translate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Read, write or fetch.
    pub kind: AccessKind,
    /// CPL==3 and not an implicit supervisor access
    pub user: bool,
    /// implicit supervisor access (GDT/IDT/TSS reads even at CPL3): SMAP rules for implicit accesses
    ///
    /// An implicit access is always supervisor (`user` is ignored) and SMAP
    /// blocks it from user pages whatever EFLAGS.AC says. The SDM applies
    /// that rule to implicit accesses made at CPL 3; at CPL < 3 they follow
    /// the explicit rule, so emu-core should set this only at CPL 3.
    pub implicit: bool,
}

impl Access {
    /// An explicit access at CPL < 3.
    pub const fn supervisor(kind: AccessKind) -> Access {
        Access {
            kind,
            user: false,
            implicit: false,
        }
    }

    /// An explicit access at CPL 3.
    pub const fn user(kind: AccessKind) -> Access {
        Access {
            kind,
            user: true,
            implicit: false,
        }
    }

    /// An implicit supervisor access (descriptor tables, TSS).
    pub const fn implicit(kind: AccessKind) -> Access {
        Access {
            kind,
            user: false,
            implicit: true,
        }
    }

    /// Whether the access counts as user-mode for paging.
    pub const fn is_user(&self) -> bool {
        self.user && !self.implicit
    }
}

/// A page fault to deliver: CR2 and the error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// The faulting linear address (CR2).
    pub addr: Gva,
    /// Error code bits: P=1, W=2, U=4, RSVD=8, I/D=16, PK=32.
    pub error_code: u32,
}
