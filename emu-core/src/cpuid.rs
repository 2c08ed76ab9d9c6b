//! The CPU model softvm reports through CPUID. Every feature bit set here
//! is implemented; a bit that is clear is either unimplemented or
//! deliberately hidden. A VMM may replace leaves with `Vcpu::set_cpuid`.

/// One CPUID leaf/sub-leaf result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuidEntry {
    pub function: u32,
    pub index: u32,
    /// The sub-leaf in `index` matters for this function.
    pub indexed: bool,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// Feature bits of leaf 1 EDX that softvm implements.
pub mod leaf1_edx {
    pub const PSE: u32 = 1 << 3;
    pub const TSC: u32 = 1 << 4;
    pub const MSR: u32 = 1 << 5;
    pub const PAE: u32 = 1 << 6;
    pub const CX8: u32 = 1 << 8;
    pub const APIC: u32 = 1 << 9;
    pub const SEP: u32 = 1 << 11;
    pub const PGE: u32 = 1 << 13;
    pub const CMOV: u32 = 1 << 15;
    pub const PAT: u32 = 1 << 16;
    pub const CLFSH: u32 = 1 << 19;
}

/// Feature bits of leaf 1 ECX.
pub mod leaf1_ecx {
    pub const CX16: u32 = 1 << 13;
    pub const PCID: u32 = 1 << 17;
    pub const X2APIC: u32 = 1 << 21;
    pub const MOVBE: u32 = 1 << 22;
    pub const POPCNT: u32 = 1 << 23;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    pub const HYPERVISOR: u32 = 1 << 31;
}

/// Feature bits of leaf 7 sub-leaf 0 EBX.
pub mod leaf7_ebx {
    pub const FSGSBASE: u32 = 1 << 0;
    pub const BMI1: u32 = 1 << 3;
    pub const SMEP: u32 = 1 << 7;
    pub const BMI2: u32 = 1 << 8;
    pub const INVPCID: u32 = 1 << 10;
    pub const ADX: u32 = 1 << 19;
    pub const SMAP: u32 = 1 << 20;
}

/// Feature bits of leaf 7 sub-leaf 0 ECX.
pub mod leaf7_ecx {
    pub const UMIP: u32 = 1 << 2;
    pub const RDPID: u32 = 1 << 22;
}

/// Feature bits of leaf 0x8000_0001.
pub mod ext1 {
    /// ECX: LAHF/SAHF in 64-bit mode.
    pub const LAHF_LM: u32 = 1 << 0;
    /// ECX: LZCNT.
    pub const ABM: u32 = 1 << 5;
    /// EDX
    pub const SYSCALL: u32 = 1 << 11;
    pub const NX: u32 = 1 << 20;
    pub const RDTSCP: u32 = 1 << 27;
    pub const LM: u32 = 1 << 29;
}

/// The CPUID table of one vCPU.
#[derive(Clone, Debug)]
pub struct Cpuid {
    pub entries: Vec<CpuidEntry>,
}

impl Cpuid {
    /// softvm's default model for vCPU `apic_id` of `ncpus`.
    pub fn default_model(apic_id: u32, ncpus: u32) -> Cpuid {
        let e = |function, eax, ebx, ecx, edx| CpuidEntry {
            function,
            index: 0,
            indexed: false,
            eax,
            ebx,
            ecx,
            edx,
        };
        let vendor = *b"GenuineIntel";
        let w =
            |i: usize| u32::from_le_bytes([vendor[i], vendor[i + 1], vendor[i + 2], vendor[i + 3]]);
        use leaf1_ecx as c1;
        use leaf1_edx as d1;
        let edx1 = d1::PSE
            | d1::TSC
            | d1::MSR
            | d1::PAE
            | d1::CX8
            | d1::CMOV
            | d1::PGE
            | d1::PAT
            | d1::CLFSH
            | d1::SEP
            | d1::APIC;
        let ecx1 = c1::CX16
            | c1::PCID
            | c1::X2APIC
            | c1::MOVBE
            | c1::POPCNT
            | c1::TSC_DEADLINE
            | c1::HYPERVISOR;
        let ebx1 = (apic_id << 24) | (ncpus.min(255) << 16) | (8 << 8);
        let brand = *b"softvm x86-64 interpreter\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let bw =
            |i: usize| u32::from_le_bytes([brand[i], brand[i + 1], brand[i + 2], brand[i + 3]]);
        let mut entries = vec![
            e(0, 7, w(0), w(8), w(4)),
            // Family 6, model 0x55, stepping 1 (a documented fiction).
            e(1, 0x0005_0651, ebx1, ecx1, edx1),
            CpuidEntry {
                function: 7,
                index: 0,
                indexed: true,
                ebx: leaf7_ebx::FSGSBASE
                    | leaf7_ebx::BMI1
                    | leaf7_ebx::SMEP
                    | leaf7_ebx::BMI2
                    | leaf7_ebx::INVPCID
                    | leaf7_ebx::ADX
                    | leaf7_ebx::SMAP,
                ecx: leaf7_ecx::RDPID | leaf7_ecx::UMIP,
                ..CpuidEntry::default()
            },
            e(0x8000_0000, 0x8000_0008, 0, 0, 0),
            e(
                0x8000_0001,
                0,
                0,
                ext1::LAHF_LM | ext1::ABM,
                ext1::LM | ext1::NX | ext1::RDTSCP | ext1::SYSCALL,
            ),
            // 48-bit linear and 48-bit physical addresses (softmmu's
            // MAXPHYADDR for reserved-bit checks).
            e(0x8000_0008, 0x3030, 0, 0, 0),
        ];
        for (k, f) in [0x8000_0002u32, 0x8000_0003, 0x8000_0004]
            .iter()
            .enumerate()
        {
            let o = k * 16;
            entries.push(e(*f, bw(o), bw(o + 4), bw(o + 8), bw(o + 12)));
        }
        Cpuid { entries }
    }

    /// Look up a leaf. Unknown leaves read as zero, as the highest basic
    /// leaf would on Intel processors.
    pub fn lookup(&self, function: u32, index: u32) -> [u32; 4] {
        self.entries
            .iter()
            .find(|e| e.function == function && (!e.indexed || e.index == index))
            .map(|e| [e.eax, e.ebx, e.ecx, e.edx])
            .unwrap_or([0; 4])
    }

    /// Whether a feature bit is set (used to gate instructions).
    pub fn has(&self, function: u32, reg: usize, bit: u32) -> bool {
        self.lookup(function, 0)[reg] & bit != 0
    }
}
