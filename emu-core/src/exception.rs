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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub vector: u8,
    pub error_code: Option<u32>,
    /// The faulting linear address, for #PF (goes to CR2 on delivery).
    pub cr2: Option<u64>,
}

impl Exception {
    pub const fn new(vector: u8) -> Exception {
        Exception {
            vector,
            error_code: None,
            cr2: None,
        }
    }
    pub const fn with_code(vector: u8, code: u32) -> Exception {
        Exception {
            vector,
            error_code: Some(code),
            cr2: None,
        }
    }
    pub const fn ud() -> Exception {
        Exception::new(vector::UD)
    }
    pub const fn de() -> Exception {
        Exception::new(vector::DE)
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
            vector: vector::PF,
            error_code: Some(code),
            cr2: Some(addr),
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
}

impl From<Exception> for Fault {
    fn from(e: Exception) -> Fault {
        Fault::Exception(e)
    }
}

pub type ExecResult<T = ()> = Result<T, Fault>;
