//! The named CPU models of QEMU's `-cpu` option, as feature sets.
//!
//! Each model lists the features QEMU gives it (vendor, family, model,
//! stepping and the CPUID feature words); softvm advertises the part it
//! implements and reports the rest as dropped, as QEMU's TCG does for
//! features it cannot emulate. Only models that test configurations name
//! and their ancestors are listed; `-cpu help` prints them.

use super::features::Feature::{self, *};
use super::Vendor;

/// A named model: what QEMU advertises for it.
pub struct NamedModel {
    pub name: &'static str,
    pub vendor: Vendor,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    /// Feature lists, each extending the previous generation's.
    pub features: &'static [&'static [Feature]],
    pub description: &'static str,
}

/// Leaf 1 EDX of QEMU's "PPRO_FEATURES" plus the bits every 64-bit model
/// adds.
const BASE64: &[Feature] = &[
    Fpu, De, Pse, Tsc, Msr, Pae, Mce, Cx8, Apic, Sep, Mtrr, Pge, Mca, Cmov, Pat, Pse36, Clflush,
    Mmx, Fxsr, Sse, Sse2, Syscall, Nx, Lm,
];
const CONROE: &[Feature] = &[Vme, Ss, Sse3, Ssse3, LahfLm];
const PENRYN: &[Feature] = &[Cx16, Sse41];
const NEHALEM: &[Feature] = &[Sse42, Popcnt, Rdtscp];
const WESTMERE: &[Feature] = &[Aes, Pclmulqdq];
const SANDYBRIDGE: &[Feature] = &[X2apic, TscDeadline, Xsave, Avx, Xsaveopt];
const IVYBRIDGE: &[Feature] = &[Fsgsbase, Smep, Erms, F16c, Rdrand];
const HASWELL: &[Feature] = &[Fma, Movbe, Pcid, Invpcid, Avx2, Bmi1, Bmi2, Abm];
const BROADWELL: &[Feature] = &[Rdseed, Adx, Smap, Prefetchw];
const SKYLAKE_CLIENT: &[Feature] = &[Xsavec, Xgetbv1, Clflushopt, Pdpe1gb];
const SKYLAKE_SERVER: &[Feature] = &[
    Clwb, Pku, Avx512f, Avx512dq, Avx512cd, Avx512bw, Avx512vl, SpecCtrl, Ssbd,
];
const CASCADELAKE: &[Feature] = &[Avx512vnni];
const ICELAKE: &[Feature] = &[
    Umip,
    Rdpid,
    Avx512vbmi,
    Avx512vbmi2,
    Gfni,
    Vaes,
    Vpclmulqdq,
    Avx512bitalg,
    Avx512vpopcntdq,
    Wbnoinvd,
    Fsrm,
    La57,
];
const OPTERON_G1: &[Feature] = &[Vme, Sse3];
const OPTERON_G2: &[Feature] = &[Cx16, Rdtscp, LahfLm, Svm];
const OPTERON_G3: &[Feature] = &[Monitor, Popcnt, Misalignsse, Sse4a, Abm];
const OPTERON_G4: &[Feature] = &[
    Ssse3, Sse41, Sse42, Aes, Pclmulqdq, Xsave, Avx, Xop, Fma4, Prefetchw, Pdpe1gb,
];
const OPTERON_G5: &[Feature] = &[F16c, Fma, Tbm];
const EPYC_BASE: &[Feature] = &[
    Ssse3, Sse41, Sse42, Aes, Pclmulqdq, Xsave, Avx, Prefetchw, Pdpe1gb, F16c, Fma,
];
const EPYC: &[Feature] = &[
    Movbe, Rdrand, Fsgsbase, Bmi1, Avx2, Smep, Bmi2, Rdseed, Adx, Smap, Clflushopt, ShaNi,
    Xsaveopt, Xsavec, Xgetbv1, Mmxext, FxsrOpt, Topoext,
];

pub const MODELS: &[NamedModel] = &[
    NamedModel {
        name: "qemu64",
        vendor: Vendor::Amd,
        family: 15,
        model: 107,
        stepping: 1,
        features: &[BASE64, &[Sse3, Cx16, LahfLm, Svm]],
        description: "QEMU Virtual CPU version 2.5+",
    },
    NamedModel {
        name: "kvm64",
        vendor: Vendor::Intel,
        family: 15,
        model: 6,
        stepping: 1,
        features: &[BASE64, &[Sse3, Cx16]],
        description: "Common KVM processor",
    },
    NamedModel {
        name: "Conroe",
        vendor: Vendor::Intel,
        family: 6,
        model: 15,
        stepping: 3,
        features: &[BASE64, CONROE],
        description: "Intel Celeron_4x0 (Conroe/Merom Class Core 2)",
    },
    NamedModel {
        name: "Penryn",
        vendor: Vendor::Intel,
        family: 6,
        model: 23,
        stepping: 3,
        features: &[BASE64, CONROE, PENRYN],
        description: "Intel Core 2 Duo P9xxx (Penryn Class Core 2)",
    },
    NamedModel {
        name: "Nehalem",
        vendor: Vendor::Intel,
        family: 6,
        model: 26,
        stepping: 3,
        features: &[BASE64, CONROE, PENRYN, NEHALEM],
        description: "Intel Core i7 9xx (Nehalem Class Core i7)",
    },
    NamedModel {
        name: "Westmere",
        vendor: Vendor::Intel,
        family: 6,
        model: 44,
        stepping: 1,
        features: &[BASE64, CONROE, PENRYN, NEHALEM, WESTMERE],
        description: "Westmere E56xx/L56xx/X56xx (Nehalem-C)",
    },
    NamedModel {
        name: "SandyBridge",
        vendor: Vendor::Intel,
        family: 6,
        model: 42,
        stepping: 1,
        features: &[BASE64, CONROE, PENRYN, NEHALEM, WESTMERE, SANDYBRIDGE],
        description: "Intel Xeon E312xx (Sandy Bridge)",
    },
    NamedModel {
        name: "IvyBridge",
        vendor: Vendor::Intel,
        family: 6,
        model: 58,
        stepping: 9,
        features: &[
            BASE64,
            CONROE,
            PENRYN,
            NEHALEM,
            WESTMERE,
            SANDYBRIDGE,
            IVYBRIDGE,
        ],
        description: "Intel Xeon E3-12xx v2 (Ivy Bridge)",
    },
    NamedModel {
        name: "Haswell",
        vendor: Vendor::Intel,
        family: 6,
        model: 60,
        stepping: 4,
        features: &[
            BASE64,
            CONROE,
            PENRYN,
            NEHALEM,
            WESTMERE,
            SANDYBRIDGE,
            IVYBRIDGE,
            HASWELL,
        ],
        description: "Intel Core Processor (Haswell)",
    },
    NamedModel {
        name: "Broadwell",
        vendor: Vendor::Intel,
        family: 6,
        model: 61,
        stepping: 2,
        features: &[
            BASE64,
            CONROE,
            PENRYN,
            NEHALEM,
            WESTMERE,
            SANDYBRIDGE,
            IVYBRIDGE,
            HASWELL,
            BROADWELL,
        ],
        description: "Intel Core Processor (Broadwell)",
    },
    NamedModel {
        name: "Skylake-Client",
        vendor: Vendor::Intel,
        family: 6,
        model: 94,
        stepping: 3,
        features: &[
            BASE64,
            CONROE,
            PENRYN,
            NEHALEM,
            WESTMERE,
            SANDYBRIDGE,
            IVYBRIDGE,
            HASWELL,
            BROADWELL,
            SKYLAKE_CLIENT,
        ],
        description: "Intel Core Processor (Skylake)",
    },
    NamedModel {
        name: "Skylake-Server",
        vendor: Vendor::Intel,
        family: 6,
        model: 85,
        stepping: 4,
        features: &[
            BASE64,
            CONROE,
            PENRYN,
            NEHALEM,
            WESTMERE,
            SANDYBRIDGE,
            IVYBRIDGE,
            HASWELL,
            BROADWELL,
            SKYLAKE_CLIENT,
            SKYLAKE_SERVER,
        ],
        description: "Intel Xeon Processor (Skylake)",
    },
    NamedModel {
        name: "Cascadelake-Server",
        vendor: Vendor::Intel,
        family: 6,
        model: 85,
        stepping: 6,
        features: &[
            BASE64,
            CONROE,
            PENRYN,
            NEHALEM,
            WESTMERE,
            SANDYBRIDGE,
            IVYBRIDGE,
            HASWELL,
            BROADWELL,
            SKYLAKE_CLIENT,
            SKYLAKE_SERVER,
            CASCADELAKE,
        ],
        description: "Intel Xeon Processor (Cascadelake)",
    },
    NamedModel {
        name: "Icelake-Server",
        vendor: Vendor::Intel,
        family: 6,
        model: 134,
        stepping: 0,
        features: &[
            BASE64,
            CONROE,
            PENRYN,
            NEHALEM,
            WESTMERE,
            SANDYBRIDGE,
            IVYBRIDGE,
            HASWELL,
            BROADWELL,
            SKYLAKE_CLIENT,
            SKYLAKE_SERVER,
            CASCADELAKE,
            ICELAKE,
        ],
        description: "Intel Xeon Processor (Icelake)",
    },
    NamedModel {
        name: "Opteron_G1",
        vendor: Vendor::Amd,
        family: 15,
        model: 6,
        stepping: 1,
        features: &[BASE64, OPTERON_G1],
        description: "AMD Opteron 240 (Gen 1 Class Opteron)",
    },
    NamedModel {
        name: "Opteron_G2",
        vendor: Vendor::Amd,
        family: 15,
        model: 6,
        stepping: 1,
        features: &[BASE64, OPTERON_G1, OPTERON_G2],
        description: "AMD Opteron 22xx (Gen 2 Class Opteron)",
    },
    NamedModel {
        name: "Opteron_G3",
        vendor: Vendor::Amd,
        family: 16,
        model: 2,
        stepping: 3,
        features: &[BASE64, OPTERON_G1, OPTERON_G2, OPTERON_G3],
        description: "AMD Opteron 23xx (Gen 3 Class Opteron)",
    },
    NamedModel {
        name: "Opteron_G4",
        vendor: Vendor::Amd,
        family: 21,
        model: 1,
        stepping: 2,
        features: &[BASE64, OPTERON_G1, OPTERON_G2, OPTERON_G3, OPTERON_G4],
        description: "AMD Opteron 62xx class CPU",
    },
    NamedModel {
        name: "Opteron_G5",
        vendor: Vendor::Amd,
        family: 21,
        model: 2,
        stepping: 0,
        features: &[
            BASE64, OPTERON_G1, OPTERON_G2, OPTERON_G3, OPTERON_G4, OPTERON_G5,
        ],
        description: "AMD Opteron 63xx class CPU",
    },
    NamedModel {
        name: "EPYC",
        vendor: Vendor::Amd,
        family: 23,
        model: 1,
        stepping: 2,
        features: &[BASE64, OPTERON_G1, OPTERON_G2, OPTERON_G3, EPYC_BASE, EPYC],
        description: "AMD EPYC Processor",
    },
];

/// Look a named model up (case-sensitive, as QEMU).
pub fn by_name(name: &str) -> Option<&'static NamedModel> {
    MODELS.iter().find(|m| m.name == name)
}
