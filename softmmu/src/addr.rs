//! Guest address newtypes.
//!
//! Each kind of address gets its own type so that a guest-virtual address can
//! never be passed where a guest-physical one is expected. There is
//! deliberately no `From<u64>`: every conversion from a raw number is spelled
//! `new`, so a reader can see where an address enters the MMU.

/// log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;
/// The size of a 4 KiB page, the granule of memslots, sptes and the front TLB.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Mask of the offset bits inside a page.
pub const PAGE_MASK: u64 = PAGE_SIZE - 1;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw address.
            pub const fn new(v: u64) -> Self {
                Self(v)
            }

            /// The raw address.
            pub const fn raw(self) -> u64 {
                self.0
            }

            /// Offset of the address inside its 4 KiB page.
            pub const fn page_offset(self) -> u64 {
                self.0 & PAGE_MASK
            }

            /// The address of the start of its 4 KiB page.
            pub const fn align_down(self) -> Self {
                Self(self.0 & !PAGE_MASK)
            }

            /// `self + off`, or `None` if that overflows 64 bits.
            pub const fn checked_add(self, off: u64) -> Option<Self> {
                match self.0.checked_add(off) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// `self + off` modulo 2^64 (linear addresses wrap on x86).
            pub const fn wrapping_add(self, off: u64) -> Self {
                Self(self.0.wrapping_add(off))
            }
        }

        impl core::fmt::LowerHex for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// A guest virtual (linear) address: what the guest's page tables translate.
    Gva
);
address_type!(
    /// A guest physical address: what memslots map to host memory.
    Gpa
);

impl Gpa {
    /// The frame that holds this address.
    pub const fn gfn(self) -> Gfn {
        Gfn(self.0 >> PAGE_SHIFT)
    }
}

/// A guest frame number: a guest physical address divided by the page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Gfn(u64);

impl Gfn {
    /// Wraps a raw frame number.
    pub const fn new(v: u64) -> Self {
        Self(v)
    }

    /// The raw frame number.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The guest physical address of the first byte of the frame.
    pub const fn gpa(self) -> Gpa {
        Gpa(self.0 << PAGE_SHIFT)
    }
}

impl core::fmt::LowerHex for Gfn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn page_helpers() {
        let a = Gva::new(0x1234_5678);
        assert_eq!(a.page_offset(), 0x678);
        assert_eq!(a.align_down(), Gva::new(0x1234_5000));
        assert_eq!(Gva::new(u64::MAX).checked_add(1), None);
        assert_eq!(Gva::new(u64::MAX).wrapping_add(2), Gva::new(1));
        let p = Gpa::new(0x7_f123);
        assert_eq!(p.gfn(), Gfn::new(0x7f));
        assert_eq!(p.gfn().gpa(), Gpa::new(0x7_f000));
    }
}
