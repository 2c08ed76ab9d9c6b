//! Architectural exceptions, and the other reasons an instruction stops.

/// Exception vectors (Intel SDM Vol. 3A, Table 6-1).
pub mod vector {
    pub const DE: u8 = 0;
    pub const DB: u8 = 1;
    pub const NMI: u8 = 2;
    pub const BP: u8 = 3;
    pub const OF: u8 = 4;
    pub const BR: u8 = 5;
    pub const UD: u8 = 6;
    pub const NM: u8 = 7;
    pub const DF: u8 = 8;
    pub const TS: u8 = 10;
    pub const NP: u8 = 11;
    pub const SS: u8 = 12;
    pub const GP: u8 = 13;
    pub const PF: u8 = 14;
    pub const MF: u8 = 16;
    pub const AC: u8 = 17;
    pub const XM: u8 = 19;
}

/// A guest-visible exception: a value, never a host error.
///
/// Laid out in 16 bytes with a niche (the `bool`s), so that [`Fault`],
/// `ExecResult<()>` and `ExecResult<u64>` are 16 bytes too and every
/// instruction handler returns in two registers rather than through memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    /// For #PF, the faulting linear address (goes to CR2 on delivery).
    addr: u64,
    code: u32,
    pub vector: u8,
    has_code: bool,
    has_addr: bool,
}

impl Exception {
    pub const fn new(vector: u8) -> Exception {
        Exception {
            addr: 0,
            code: 0,
            vector,
            has_code: false,
            has_addr: false,
        }
    }
    pub const fn with_code(vector: u8, code: u32) -> Exception {
        Exception {
            addr: 0,
            code,
            vector,
            has_code: true,
            has_addr: false,
        }
    }
    /// The error code, when the instruction supplied one.
    pub const fn error_code(&self) -> Option<u32> {
        if self.has_code {
            Some(self.code)
        } else {
            None
        }
    }
    /// The faulting address of a #PF (for CR2).
    pub const fn cr2(&self) -> Option<u64> {
        if self.has_addr {
            Some(self.addr)
        } else {
            None
        }
    }
    pub const fn ud() -> Exception {
        Exception::new(vector::UD)
    }
    pub const fn de() -> Exception {
        Exception::new(vector::DE)
    }
    /// #NM: device not available (CR0.EM/TS).
    pub const fn nm() -> Exception {
        Exception::new(vector::NM)
    }
    /// #MF: a pending unmasked x87 exception (CR0.NE = 1).
    pub const fn mf() -> Exception {
        Exception::new(vector::MF)
    }
    /// #XM: an unmasked SIMD floating-point exception (CR4.OSXMMEXCPT = 1).
    pub const fn xm() -> Exception {
        Exception::new(vector::XM)
    }
    /// #AC(0): alignment check.
    pub const fn ac() -> Exception {
        Exception::with_code(vector::AC, 0)
    }
    pub const fn gp(code: u32) -> Exception {
        Exception::with_code(vector::GP, code)
    }
    pub const fn ss(code: u32) -> Exception {
        Exception::with_code(vector::SS, code)
    }
    pub const fn np(code: u32) -> Exception {
        Exception::with_code(vector::NP, code)
    }
    pub const fn ts(code: u32) -> Exception {
        Exception::with_code(vector::TS, code)
    }
    pub const fn pf(addr: u64, code: u32) -> Exception {
        Exception {
            addr,
            code,
            vector: vector::PF,
            has_code: true,
            has_addr: true,
        }
    }

    /// Whether delivering this vector pushes an error code
    /// (Intel SDM Vol. 3A, 6.13).
    pub fn has_error_code(vector: u8) -> bool {
        matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21)
    }

    /// Contributory exceptions for the double-fault rules (SDM Table 6-4).
    pub fn is_contributory(vector: u8) -> bool {
        matches!(vector, 0 | 10 | 11 | 12 | 13)
    }
}

/// Why an instruction did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Deliver this exception to the guest.
    Exception(Exception),
    /// The instruction needs data from the VMM (port or MMIO read); it will
    /// be executed again from the start once the data is there.
    Exit,
    /// An instruction softvm does not implement (counted; #UD or an
    /// internal-error exit, as the VMM chose).
    Unimplemented,
    /// The code to run is not in RAM (an instruction fetch from MMIO or
    /// from a gpa in no memslot): softvm runs code from RAM only, as KVM's
    /// emulator does, and reports an internal error.
    CodeNotInRam,
}

impl From<Exception> for Fault {
    fn from(e: Exception) -> Fault {
        Fault::Exception(e)
    }
}

pub type ExecResult<T = ()> = Result<T, Fault>;

#[cfg(test)]
mod size_tests {
    use super::{ExecResult, Fault};

    #[test]
    fn results_fit_in_two_registers() {
        assert_eq!(std::mem::size_of::<Fault>(), 16);
        assert_eq!(std::mem::size_of::<ExecResult>(), 16);
        assert_eq!(std::mem::size_of::<ExecResult<u64>>(), 16);
    }
}
