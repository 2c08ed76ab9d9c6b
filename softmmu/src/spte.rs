//! Shadow page-table entries (sptes): their bit layout and the MMIO spte.
//!
//! An spte is the 64-bit value the shadow MMU keeps for one guest-virtual
//! page. It is either *present* (a cached guest walk: frame and effective
//! rights) or an *MMIO spte*: a not-present entry remembering "this gfn is in
//! no memslot" together with the memslot generation that decision was made
//! under (see the crate docs, "The idea: Linux ee3d1570b586").
//!
//! # MMIO spte layout (the seed patch's, kept exactly)
//!
//! | spte bits | content                                  |
//! |-----------|------------------------------------------|
//! | 0         | present: always 0                        |
//! | 1         | access: write ([`ACC_WRITE_MASK`])       |
//! | 2         | access: user ([`ACC_USER_MASK`])         |
//! | 3..=11    | generation bits 1..=9                    |
//! | 12..=51   | gfn                                      |
//! | 52..=61   | generation bits 10..=19                  |
//! | 62, 63    | both set: the MMIO marker                |
//!
//! Generation bit 0 is never stored and reads back as zero. An update in
//! progress has an odd generation, so an spte tagged during it would carry
//! the *previous* even generation, which is never current again until the
//! 20 bits wrap (softvm makes no MMIO spte while the generation is odd, for
//! that reason); and the current generation, odd during the update,
//! matches no stored value at all.
//!
//! The marker is softvm's own choice (KVM uses reserved-bit patterns that the
//! hardware faults on). A present spte never has bit 62 set
//! ([`PRESENT_SPTE_MASK`] is asserted not to contain it), so the marker alone
//! tells the two kinds apart.
//!
//! # Present spte layout (softvm's own)
//!
//! | bits    | content                                                     |
//! |---------|-------------------------------------------------------------|
//! | 0       | present                                                     |
//! | 1       | writable (R/W=1 at every level of the walk)                 |
//! | 2       | user (U/S=1 at every level of the walk)                     |
//! | 8       | global (G=1 in the leaf with CR4.PGE)                       |
//! | 9..=10  | guest page size: 0 = 4 KiB, 1 = 2/4 MiB, 2 = 1 GiB          |
//! | 11      | the guest leaf's dirty bit is set: writes need no walk      |
//! | 12..=51 | gfn                                                         |
//! | 63      | no-execute (XD=1 at some level, EFER.NXE=1)                 |

/// Where generation bits 1..=9 start inside the spte.
pub const MMIO_SPTE_GEN_LOW_SHIFT: u32 = 2;
/// Where generation bits 10..=19 start inside the spte.
pub const MMIO_SPTE_GEN_HIGH_SHIFT: u32 = 52;
/// Number of generation bits kept in an MMIO spte (bit 0 included, though it
/// is never stored).
pub const MMIO_GEN_SHIFT: u32 = 20;
/// Number of generation bits in the low field (bit 0 and bits 1..=9).
pub const MMIO_GEN_LOW_SHIFT: u32 = 10;
/// Generation bits stored in the low field: 1..=9 (bit 0 is dropped).
pub const MMIO_GEN_LOW_MASK: u64 = (1 << 10) - 2;
/// The part of the memslot generation an MMIO spte can remember.
pub const MMIO_GEN_MASK: u64 = (1 << 20) - 1;

/// Access bit: the walk allowed writes. In MMIO sptes softvm sets it only
/// once the guest dirty bit is set, so a write hit never skips a D update.
pub const ACC_WRITE_MASK: u32 = 1 << 1;
/// Access bit: the walk allowed user-mode access.
pub const ACC_USER_MASK: u32 = 1 << 2;
/// Access bits an MMIO spte keeps.
pub const MMIO_ACC_MASK: u32 = ACC_WRITE_MASK | ACC_USER_MASK;

/// Bit 0 of every spte: set only in present sptes.
pub const SPTE_PRESENT: u64 = 1;
/// Present spte: writable (R/W=1 at every level).
pub const SPTE_WRITABLE: u64 = 1 << 1;
/// Present spte: the guest dirty bit is already set.
pub const SPTE_DIRTY: u64 = 1 << 11;
/// Present spte: user-accessible.
pub const SPTE_USER: u64 = 1 << 2;
/// Present spte: a global translation (survives non-global flushes).
pub const SPTE_GLOBAL: u64 = 1 << 8;
/// Present spte: shift of the guest page-size field.
pub const SPTE_SIZE_SHIFT: u32 = 9;
/// Present spte: the guest page-size field.
pub const SPTE_SIZE_MASK: u64 = 3 << SPTE_SIZE_SHIFT;
/// Present spte: no-execute.
pub const SPTE_NX: u64 = 1 << 63;
/// The gfn field of both kinds of spte (bits 12..=51).
pub const SPTE_GFN_MASK: u64 = ((1 << 52) - 1) & !((1 << 12) - 1);
/// Bits 62 and 63 both set: an MMIO spte.
pub const SPTE_MMIO_MASK: u64 = 3 << 62;
/// Every bit a present spte may use.
pub const PRESENT_SPTE_MASK: u64 = SPTE_PRESENT
    | SPTE_WRITABLE
    | SPTE_USER
    | SPTE_GLOBAL
    | SPTE_SIZE_MASK
    | SPTE_DIRTY
    | SPTE_GFN_MASK
    | SPTE_NX;

/// MMIO spte: where the access bits live.
pub const MMIO_SPTE_ACC_MASK: u64 = MMIO_ACC_MASK as u64;
/// MMIO spte: where generation bits 1..=9 live (bits 3..=11).
pub const MMIO_SPTE_GEN_LOW_BITS: u64 = MMIO_GEN_LOW_MASK << MMIO_SPTE_GEN_LOW_SHIFT;
/// MMIO spte: where generation bits 10..=19 live (bits 52..=61).
pub const MMIO_SPTE_GEN_HIGH_BITS: u64 =
    (MMIO_GEN_MASK >> MMIO_GEN_LOW_SHIFT) << MMIO_SPTE_GEN_HIGH_SHIFT;

// The layout invariants, checked by the compiler. In 2021 a generation bit
// landing on a flag bit made MMIO sptes look present and crashed hosts.
const _: () = assert!(
    MMIO_SPTE_GEN_LOW_BITS == 0xff8,
    "gen bits 1..=9 at spte bits 3..=11"
);
const _: () = assert!(
    MMIO_SPTE_GEN_HIGH_BITS == 0x3ff << 52,
    "gen bits 10..=19 at 52..=61"
);
const _: () = assert!(MMIO_GEN_MASK == (1 << MMIO_GEN_SHIFT) - 1);
const _: () = assert!(MMIO_SPTE_GEN_LOW_BITS & MMIO_SPTE_GEN_HIGH_BITS == 0);
const _: () = assert!((MMIO_SPTE_GEN_LOW_BITS | MMIO_SPTE_GEN_HIGH_BITS) & SPTE_GFN_MASK == 0);
const _: () = assert!(
    (MMIO_SPTE_GEN_LOW_BITS | MMIO_SPTE_GEN_HIGH_BITS | SPTE_GFN_MASK) & MMIO_SPTE_ACC_MASK == 0
);
const _: () = assert!(
    (MMIO_SPTE_GEN_LOW_BITS | MMIO_SPTE_GEN_HIGH_BITS | SPTE_GFN_MASK | MMIO_SPTE_ACC_MASK)
        & (SPTE_MMIO_MASK | SPTE_PRESENT)
        == 0
);
const _: () = assert!(
    PRESENT_SPTE_MASK & (1 << 62) == 0,
    "present sptes never set bit 62"
);
const _: () = assert!(
    (SPTE_WRITABLE | SPTE_USER | SPTE_GLOBAL | SPTE_SIZE_MASK | SPTE_DIRTY)
        & (SPTE_GFN_MASK | SPTE_NX | SPTE_PRESENT)
        == 0
);
const _: () =
    assert!(SPTE_DIRTY & (SPTE_SIZE_MASK | SPTE_GLOBAL) == 0 && SPTE_GLOBAL & SPTE_SIZE_MASK == 0);
// Every field of an MMIO spte, fully set, still is not present and is MMIO;
// and the fields add up to all 64 bits with nothing shared.
const _: () = assert!(make_mmio_spte(u64::MAX, u32::MAX, u64::MAX) & SPTE_PRESENT == 0);
const _: () = assert!(is_mmio_spte(make_mmio_spte(u64::MAX, u32::MAX, u64::MAX)));
const _: () = assert!(is_mmio_spte(make_mmio_spte(0, 0, 0)));
const _: () = assert!(
    (MMIO_SPTE_GEN_LOW_BITS
        ^ MMIO_SPTE_GEN_HIGH_BITS
        ^ SPTE_GFN_MASK
        ^ MMIO_SPTE_ACC_MASK
        ^ SPTE_MMIO_MASK
        ^ SPTE_PRESENT)
        == u64::MAX
);
const _: () =
    assert!(get_mmio_spte_generation(make_mmio_spte(0, 0, MMIO_GEN_MASK)) == MMIO_GEN_MASK - 1);

/// Builds an MMIO spte for `gfn` with the `access` bits ([`ACC_WRITE_MASK`],
/// [`ACC_USER_MASK`]; others are dropped) under memslot `generation`. Bits
/// of `gfn` above 40 and of `generation` above 20 are dropped, and so is
/// generation bit 0.
pub const fn make_mmio_spte(gfn: u64, access: u32, generation: u64) -> u64 {
    let gen = generation & MMIO_GEN_MASK;
    let mut spte = SPTE_MMIO_MASK;
    spte |= (gfn << 12) & SPTE_GFN_MASK;
    spte |= (access & MMIO_ACC_MASK) as u64;
    spte |= (gen & MMIO_GEN_LOW_MASK) << MMIO_SPTE_GEN_LOW_SHIFT;
    spte |= (gen >> MMIO_GEN_LOW_SHIFT) << MMIO_SPTE_GEN_HIGH_SHIFT;
    spte
}

/// Whether `spte` is an MMIO spte (both marker bits set).
pub const fn is_mmio_spte(spte: u64) -> bool {
    spte & SPTE_MMIO_MASK == SPTE_MMIO_MASK
}

/// The generation stored in an MMIO spte; bit 0 always reads as zero.
pub const fn get_mmio_spte_generation(spte: u64) -> u64 {
    let low = (spte >> MMIO_SPTE_GEN_LOW_SHIFT) & MMIO_GEN_LOW_MASK;
    let high = (spte >> MMIO_SPTE_GEN_HIGH_SHIFT) & (MMIO_GEN_MASK >> MMIO_GEN_LOW_SHIFT);
    low | (high << MMIO_GEN_LOW_SHIFT)
}

/// The gfn stored in an MMIO spte.
pub const fn get_mmio_spte_gfn(spte: u64) -> u64 {
    (spte & SPTE_GFN_MASK) >> 12
}

/// The access bits stored in an MMIO spte.
pub const fn get_mmio_spte_access(spte: u64) -> u32 {
    (spte & MMIO_SPTE_ACC_MASK) as u32
}

/// The part of a memslot generation MMIO sptes are compared with. Bit 0 is
/// kept here on purpose: while an update is in progress the current value is
/// odd and equals no stored generation.
pub const fn mmio_generation(generation: u64) -> u64 {
    generation & MMIO_GEN_MASK
}

/// Guest page sizes a present spte can come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// A 4 KiB page.
    Size4K,
    /// A 2 MiB (PAE, 4-level) or 4 MiB (32-bit PSE) page.
    Large,
    /// A 1 GiB page.
    Huge,
}

/// Builds a present spte. `gfn` is the frame of this 4 KiB piece of the page.
pub const fn make_present_spte(
    gfn: u64,
    writable: bool,
    dirty: bool,
    user: bool,
    nx: bool,
    global: bool,
    size: PageSize,
) -> u64 {
    let mut spte = SPTE_PRESENT | ((gfn << 12) & SPTE_GFN_MASK);
    if writable {
        spte |= SPTE_WRITABLE;
    }
    if dirty {
        spte |= SPTE_DIRTY;
    }
    if user {
        spte |= SPTE_USER;
    }
    if nx {
        spte |= SPTE_NX;
    }
    if global {
        spte |= SPTE_GLOBAL;
    }
    let sz = match size {
        PageSize::Size4K => 0,
        PageSize::Large => 1,
        PageSize::Huge => 2,
    };
    spte | (sz << SPTE_SIZE_SHIFT)
}

/// Whether `spte` is a present spte.
pub const fn is_present_spte(spte: u64) -> bool {
    spte & SPTE_PRESENT != 0 && spte & (1 << 62) == 0
}

/// The gfn of a present spte.
pub const fn present_spte_gfn(spte: u64) -> u64 {
    (spte & SPTE_GFN_MASK) >> 12
}

/// The guest page size recorded in a present spte.
pub const fn present_spte_size(spte: u64) -> PageSize {
    match (spte & SPTE_SIZE_MASK) >> SPTE_SIZE_SHIFT {
        0 => PageSize::Size4K,
        1 => PageSize::Large,
        _ => PageSize::Huge,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn mmio_spte_round_trip() {
        for &(gfn, acc, gen) in &[
            (0u64, 0u32, 0u64),
            (0xf_ffff_ffff, ACC_WRITE_MASK | ACC_USER_MASK, 0xf_fffe),
            (0x12345, ACC_USER_MASK, 0x5_5554),
            (1, ACC_WRITE_MASK, 2),
        ] {
            let s = make_mmio_spte(gfn, acc, gen);
            assert!(is_mmio_spte(s));
            assert!(!is_present_spte(s));
            assert_eq!(get_mmio_spte_gfn(s), gfn);
            assert_eq!(get_mmio_spte_access(s), acc);
            assert_eq!(get_mmio_spte_generation(s), gen);
        }
    }

    #[test]
    fn generation_bit_zero_is_never_stored() {
        for gen in [1u64, 3, 0x3ff, 0xf_ffff, 0x1_0001] {
            let s = make_mmio_spte(7, 0, gen);
            assert_eq!(get_mmio_spte_generation(s), gen & MMIO_GEN_MASK & !1);
            // The odd generation current during the update never matches.
            assert_ne!(get_mmio_spte_generation(s), mmio_generation(gen));
        }
    }

    #[test]
    fn each_generation_bit_lands_where_the_design_says() {
        for bit in 1..20u32 {
            let s = make_mmio_spte(0, 0, 1 << bit);
            let expect = if bit < 10 {
                1u64 << (bit + 2)
            } else {
                1u64 << (bit - 10 + 52)
            };
            assert_eq!(s & !SPTE_MMIO_MASK, expect, "generation bit {bit}");
        }
    }

    #[test]
    fn present_sptes_are_never_mmio() {
        let s = make_present_spte(u64::MAX, true, true, true, true, true, PageSize::Huge);
        assert!(is_present_spte(s));
        assert!(!is_mmio_spte(s));
        assert_eq!(present_spte_size(s), PageSize::Huge);
        assert_eq!(present_spte_gfn(s), (1 << 40) - 1);
    }
}
