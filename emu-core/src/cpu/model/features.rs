//! CPUID feature bits by name: where each lives (leaf, sub-leaf, register,
//! bit) and the name QEMU's `-cpu` option gives it, so that a test
//! configuration's `-cpu qemu64,+x2apic,-pcid` means the same here.
//!
//! The bit positions are the Intel SDM's (Vol. 2A, CPUID) and AMD APM's
//! (Vol. 3, Appendix E). Features softvm implements are marked; the rest
//! are listed so that their names are known (a `+name` of a feature softvm
//! lacks is dropped with a warning, as QEMU's TCG does; an unknown name is
//! an error).

/// A CPUID output register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Eax = 0,
    Ebx = 1,
    Ecx = 2,
    Edx = 3,
}

/// Where a feature bit lives and what it is called.
#[derive(Clone, Copy, Debug)]
pub struct FeatureInfo {
    pub feature: Feature,
    /// QEMU's name (`-cpu ...,+name`).
    pub name: &'static str,
    /// Other spellings QEMU accepts (Linux's `/proc/cpuinfo` names).
    pub aliases: &'static [&'static str],
    pub leaf: u32,
    pub sub: u32,
    pub reg: Reg,
    pub bit: u8,
    /// softvm implements what this bit advertises.
    pub implemented: bool,
}

macro_rules! features {
    ($( $v:ident = $name:literal $([$($alias:literal),*])?, $leaf:literal, $sub:literal, $reg:ident, $bit:literal, $imp:literal; )*) => {
        /// A named CPUID feature bit.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Feature { $($v),* }

        /// Every feature softvm knows by name, in CPUID order.
        pub const FEATURES: &[FeatureInfo] = &[
            $(FeatureInfo {
                feature: Feature::$v,
                name: $name,
                aliases: &[$($($alias),*)?],
                leaf: $leaf,
                sub: $sub,
                reg: Reg::$reg,
                bit: $bit,
                implemented: $imp,
            }),*
        ];
    };
}

features! {
    // Leaf 1, EDX.
    Fpu = "fpu", 1, 0, Edx, 0, true;
    Vme = "vme", 1, 0, Edx, 1, false;
    De = "de", 1, 0, Edx, 2, false;
    Pse = "pse", 1, 0, Edx, 3, true;
    Tsc = "tsc", 1, 0, Edx, 4, true;
    Msr = "msr", 1, 0, Edx, 5, true;
    Pae = "pae", 1, 0, Edx, 6, true;
    Mce = "mce", 1, 0, Edx, 7, false;
    Cx8 = "cx8", 1, 0, Edx, 8, true;
    Apic = "apic", 1, 0, Edx, 9, true;
    Sep = "sep", 1, 0, Edx, 11, true;
    Mtrr = "mtrr", 1, 0, Edx, 12, true;
    Pge = "pge", 1, 0, Edx, 13, true;
    Mca = "mca", 1, 0, Edx, 14, false;
    Cmov = "cmov", 1, 0, Edx, 15, true;
    Pat = "pat", 1, 0, Edx, 16, true;
    Pse36 = "pse36", 1, 0, Edx, 17, false;
    Pn = "pn", 1, 0, Edx, 18, false;
    Clflush = "clflush", 1, 0, Edx, 19, true;
    Ds = "ds", 1, 0, Edx, 21, false;
    Acpi = "acpi", 1, 0, Edx, 22, false;
    Mmx = "mmx", 1, 0, Edx, 23, true;
    Fxsr = "fxsr", 1, 0, Edx, 24, true;
    Sse = "sse", 1, 0, Edx, 25, true;
    Sse2 = "sse2", 1, 0, Edx, 26, true;
    Ss = "ss", 1, 0, Edx, 27, false;
    Ht = "ht", 1, 0, Edx, 28, false;
    Tm = "tm", 1, 0, Edx, 29, false;
    Ia64 = "ia64", 1, 0, Edx, 30, false;
    Pbe = "pbe", 1, 0, Edx, 31, false;
    // Leaf 1, ECX.
    Sse3 = "pni" ["sse3"], 1, 0, Ecx, 0, true;
    Pclmulqdq = "pclmulqdq" ["pclmuldq"], 1, 0, Ecx, 1, false;
    Dtes64 = "dtes64", 1, 0, Ecx, 2, false;
    Monitor = "monitor", 1, 0, Ecx, 3, false;
    DsCpl = "ds-cpl" ["ds_cpl"], 1, 0, Ecx, 4, false;
    Vmx = "vmx", 1, 0, Ecx, 5, false;
    Smx = "smx", 1, 0, Ecx, 6, false;
    Est = "est", 1, 0, Ecx, 7, false;
    Tm2 = "tm2", 1, 0, Ecx, 8, false;
    Ssse3 = "ssse3", 1, 0, Ecx, 9, true;
    Cid = "cid", 1, 0, Ecx, 10, false;
    Fma = "fma", 1, 0, Ecx, 12, false;
    Cx16 = "cx16", 1, 0, Ecx, 13, true;
    Xtpr = "xtpr", 1, 0, Ecx, 14, false;
    Pdcm = "pdcm", 1, 0, Ecx, 15, false;
    Pcid = "pcid", 1, 0, Ecx, 17, true;
    Dca = "dca", 1, 0, Ecx, 18, false;
    Sse41 = "sse4.1" ["sse4-1", "sse4_1"], 1, 0, Ecx, 19, true;
    Sse42 = "sse4.2" ["sse4-2", "sse4_2"], 1, 0, Ecx, 20, true;
    X2apic = "x2apic", 1, 0, Ecx, 21, true;
    Movbe = "movbe", 1, 0, Ecx, 22, true;
    Popcnt = "popcnt", 1, 0, Ecx, 23, true;
    TscDeadline = "tsc-deadline", 1, 0, Ecx, 24, true;
    Aes = "aes", 1, 0, Ecx, 25, false;
    Xsave = "xsave", 1, 0, Ecx, 26, true;
    Osxsave = "osxsave", 1, 0, Ecx, 27, false;
    Avx = "avx", 1, 0, Ecx, 28, false;
    F16c = "f16c", 1, 0, Ecx, 29, false;
    Rdrand = "rdrand", 1, 0, Ecx, 30, true;
    Hypervisor = "hypervisor", 1, 0, Ecx, 31, true;
    // Leaf 7 sub-leaf 0, EBX.
    Fsgsbase = "fsgsbase", 7, 0, Ebx, 0, true;
    TscAdjust = "tsc-adjust" ["tsc_adjust"], 7, 0, Ebx, 1, false;
    Sgx = "sgx", 7, 0, Ebx, 2, false;
    Bmi1 = "bmi1", 7, 0, Ebx, 3, true;
    Hle = "hle", 7, 0, Ebx, 4, false;
    Avx2 = "avx2", 7, 0, Ebx, 5, false;
    FdpExcptnOnly = "fdp-excptn-only", 7, 0, Ebx, 6, false;
    Smep = "smep", 7, 0, Ebx, 7, true;
    Bmi2 = "bmi2", 7, 0, Ebx, 8, true;
    Erms = "erms", 7, 0, Ebx, 9, true;
    Invpcid = "invpcid", 7, 0, Ebx, 10, true;
    Rtm = "rtm", 7, 0, Ebx, 11, false;
    ZeroFcsFds = "zero-fcs-fds", 7, 0, Ebx, 13, false;
    Mpx = "mpx", 7, 0, Ebx, 14, false;
    Avx512f = "avx512f", 7, 0, Ebx, 16, false;
    Avx512dq = "avx512dq", 7, 0, Ebx, 17, false;
    Rdseed = "rdseed", 7, 0, Ebx, 18, true;
    Adx = "adx", 7, 0, Ebx, 19, true;
    Smap = "smap", 7, 0, Ebx, 20, true;
    Avx512ifma = "avx512ifma", 7, 0, Ebx, 21, false;
    Clflushopt = "clflushopt", 7, 0, Ebx, 23, true;
    Clwb = "clwb", 7, 0, Ebx, 24, true;
    IntelPt = "intel-pt", 7, 0, Ebx, 25, false;
    Avx512pf = "avx512pf", 7, 0, Ebx, 26, false;
    Avx512er = "avx512er", 7, 0, Ebx, 27, false;
    Avx512cd = "avx512cd", 7, 0, Ebx, 28, false;
    ShaNi = "sha-ni", 7, 0, Ebx, 29, false;
    Avx512bw = "avx512bw", 7, 0, Ebx, 30, false;
    Avx512vl = "avx512vl", 7, 0, Ebx, 31, false;
    // Leaf 7 sub-leaf 0, ECX.
    Avx512vbmi = "avx512vbmi", 7, 0, Ecx, 1, false;
    Umip = "umip", 7, 0, Ecx, 2, true;
    Pku = "pku", 7, 0, Ecx, 3, false;
    Ospke = "ospke", 7, 0, Ecx, 4, false;
    Waitpkg = "waitpkg", 7, 0, Ecx, 5, false;
    Avx512vbmi2 = "avx512vbmi2", 7, 0, Ecx, 6, false;
    CetSs = "cet-ss" ["shstk"], 7, 0, Ecx, 7, false;
    Gfni = "gfni", 7, 0, Ecx, 8, false;
    Vaes = "vaes", 7, 0, Ecx, 9, false;
    Vpclmulqdq = "vpclmulqdq", 7, 0, Ecx, 10, false;
    Avx512vnni = "avx512vnni", 7, 0, Ecx, 11, false;
    Avx512bitalg = "avx512bitalg", 7, 0, Ecx, 12, false;
    Avx512vpopcntdq = "avx512-vpopcntdq", 7, 0, Ecx, 14, false;
    La57 = "la57", 7, 0, Ecx, 16, false;
    Rdpid = "rdpid", 7, 0, Ecx, 22, true;
    Cldemote = "cldemote", 7, 0, Ecx, 25, false;
    Movdiri = "movdiri", 7, 0, Ecx, 27, false;
    Movdir64b = "movdir64b", 7, 0, Ecx, 28, false;
    Pks = "pks", 7, 0, Ecx, 31, false;
    // Leaf 7 sub-leaf 0, EDX.
    Fsrm = "fsrm", 7, 0, Edx, 4, false;
    Avx512vp2intersect = "avx512-vp2intersect", 7, 0, Edx, 8, false;
    MdClear = "md-clear", 7, 0, Edx, 10, false;
    Serialize = "serialize", 7, 0, Edx, 14, false;
    Tsxldtrk = "tsx-ldtrk", 7, 0, Edx, 16, false;
    CetIbt = "cet-ibt" ["ibt"], 7, 0, Edx, 20, false;
    SpecCtrl = "spec-ctrl", 7, 0, Edx, 26, false;
    Stibp = "stibp", 7, 0, Edx, 27, false;
    ArchCapabilities = "arch-capabilities", 7, 0, Edx, 29, false;
    Ssbd = "ssbd", 7, 0, Edx, 31, false;
    // Leaf 0xD sub-leaf 1, EAX.
    Xsaveopt = "xsaveopt", 0xd, 1, Eax, 0, true;
    Xsavec = "xsavec", 0xd, 1, Eax, 1, true;
    Xgetbv1 = "xgetbv1", 0xd, 1, Eax, 2, true;
    Xsaves = "xsaves", 0xd, 1, Eax, 3, false;
    // Leaf 0x8000_0001, ECX.
    LahfLm = "lahf-lm" ["lahf_lm"], 0x8000_0001, 0, Ecx, 0, true;
    CmpLegacy = "cmp-legacy" ["cmp_legacy"], 0x8000_0001, 0, Ecx, 1, false;
    Svm = "svm", 0x8000_0001, 0, Ecx, 2, false;
    Extapic = "extapic", 0x8000_0001, 0, Ecx, 3, false;
    Cr8legacy = "cr8legacy", 0x8000_0001, 0, Ecx, 4, false;
    Abm = "abm", 0x8000_0001, 0, Ecx, 5, true;
    Sse4a = "sse4a", 0x8000_0001, 0, Ecx, 6, false;
    Misalignsse = "misalignsse", 0x8000_0001, 0, Ecx, 7, false;
    Prefetchw = "3dnowprefetch", 0x8000_0001, 0, Ecx, 8, true;
    Osvw = "osvw", 0x8000_0001, 0, Ecx, 9, false;
    Ibs = "ibs", 0x8000_0001, 0, Ecx, 10, false;
    Xop = "xop", 0x8000_0001, 0, Ecx, 11, false;
    Skinit = "skinit", 0x8000_0001, 0, Ecx, 12, false;
    Wdt = "wdt", 0x8000_0001, 0, Ecx, 13, false;
    Lwp = "lwp", 0x8000_0001, 0, Ecx, 15, false;
    Fma4 = "fma4", 0x8000_0001, 0, Ecx, 16, false;
    Tce = "tce", 0x8000_0001, 0, Ecx, 17, false;
    NodeidMsr = "nodeid-msr", 0x8000_0001, 0, Ecx, 19, false;
    Tbm = "tbm", 0x8000_0001, 0, Ecx, 21, false;
    Topoext = "topoext", 0x8000_0001, 0, Ecx, 22, false;
    PerfctrCore = "perfctr-core", 0x8000_0001, 0, Ecx, 23, false;
    PerfctrNb = "perfctr-nb", 0x8000_0001, 0, Ecx, 24, false;
    // Leaf 0x8000_0001, EDX (the AMD copies of leaf 1 EDX bits are
    // derived from leaf 1 for AMD models, not listed here).
    Syscall = "syscall", 0x8000_0001, 0, Edx, 11, true;
    Nx = "nx" ["xd"], 0x8000_0001, 0, Edx, 20, true;
    Mmxext = "mmxext", 0x8000_0001, 0, Edx, 22, true;
    FxsrOpt = "fxsr-opt" ["ffxsr"], 0x8000_0001, 0, Edx, 25, false;
    Pdpe1gb = "pdpe1gb", 0x8000_0001, 0, Edx, 26, true;
    Rdtscp = "rdtscp", 0x8000_0001, 0, Edx, 27, true;
    Lm = "lm", 0x8000_0001, 0, Edx, 29, true;
    D3nowext = "3dnowext", 0x8000_0001, 0, Edx, 30, false;
    D3now = "3dnow", 0x8000_0001, 0, Edx, 31, false;
    // Leaf 0x8000_0007, EDX.
    Invtsc = "invtsc", 0x8000_0007, 0, Edx, 8, false;
    // Leaf 0x8000_0008, EBX.
    Clzero = "clzero", 0x8000_0008, 0, Ebx, 0, false;
    Xsaveerptr = "xsaveerptr", 0x8000_0008, 0, Ebx, 2, false;
    Rdpru = "rdpru", 0x8000_0008, 0, Ebx, 4, false;
    Wbnoinvd = "wbnoinvd", 0x8000_0008, 0, Ebx, 9, false;
    Ibpb = "ibpb", 0x8000_0008, 0, Ebx, 12, false;
}

impl Feature {
    pub fn info(self) -> &'static FeatureInfo {
        &FEATURES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Look a feature up by QEMU's name or an alias (`_` and `-` are
    /// interchangeable, as in QEMU).
    pub fn by_name(name: &str) -> Option<Feature> {
        let norm = |s: &str| s.replace('_', "-").to_ascii_lowercase();
        let want = norm(name);
        FEATURES
            .iter()
            .find(|f| norm(f.name) == want || f.aliases.iter().any(|a| norm(a) == want))
            .map(|f| f.feature)
    }
}

/// A set of features (a bit per [`Feature`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FeatureSet([u64; 3]);

const _: () = assert!(FEATURES.len() <= 3 * 64);

impl FeatureSet {
    pub const EMPTY: FeatureSet = FeatureSet([0; 3]);

    pub fn of(list: &[Feature]) -> FeatureSet {
        let mut s = FeatureSet::EMPTY;
        for &f in list {
            s.insert(f);
        }
        s
    }

    /// Every feature softvm implements: the `max` model.
    pub fn implemented() -> FeatureSet {
        let mut s = FeatureSet::EMPTY;
        for f in FEATURES.iter().filter(|f| f.implemented) {
            s.insert(f.feature);
        }
        s
    }

    pub fn contains(&self, f: Feature) -> bool {
        let i = f as usize;
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn insert(&mut self, f: Feature) {
        let i = f as usize;
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn remove(&mut self, f: Feature) {
        let i = f as usize;
        self.0[i / 64] &= !(1 << (i % 64));
    }

    pub fn union(self, o: FeatureSet) -> FeatureSet {
        FeatureSet([self.0[0] | o.0[0], self.0[1] | o.0[1], self.0[2] | o.0[2]])
    }

    pub fn intersection(self, o: FeatureSet) -> FeatureSet {
        FeatureSet([self.0[0] & o.0[0], self.0[1] & o.0[1], self.0[2] & o.0[2]])
    }

    pub fn difference(self, o: FeatureSet) -> FeatureSet {
        FeatureSet([
            self.0[0] & !o.0[0],
            self.0[1] & !o.0[1],
            self.0[2] & !o.0[2],
        ])
    }

    /// The features in CPUID order.
    pub fn iter(self) -> impl Iterator<Item = Feature> {
        FEATURES
            .iter()
            .map(|f| f.feature)
            .filter(move |&f| self.contains(f))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 3]
    }

    /// The features whose bits a CPUID table sets (the inverse of
    /// building the table).
    pub fn from_cpuid(lookup: impl Fn(u32, u32) -> [u32; 4]) -> FeatureSet {
        let mut s = FeatureSet::EMPTY;
        for f in FEATURES {
            if lookup(f.leaf, f.sub)[f.reg as usize] & (1 << f.bit) != 0 {
                s.insert(f.feature);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order_and_bits_are_unique() {
        for (i, f) in FEATURES.iter().enumerate() {
            assert_eq!(f.feature as usize, i, "{}", f.name);
            assert!(f.bit < 32);
        }
        for (i, a) in FEATURES.iter().enumerate() {
            for b in &FEATURES[i + 1..] {
                assert!(
                    (a.leaf, a.sub, a.reg, a.bit) != (b.leaf, b.sub, b.reg, b.bit),
                    "{} and {} share a bit",
                    a.name,
                    b.name
                );
                assert_ne!(a.name, b.name);
            }
        }
    }

    #[test]
    fn names_and_aliases_resolve() {
        assert_eq!(Feature::by_name("sse4.2"), Some(Feature::Sse42));
        assert_eq!(Feature::by_name("sse4_2"), Some(Feature::Sse42));
        assert_eq!(Feature::by_name("tsc_deadline"), Some(Feature::TscDeadline));
        assert_eq!(Feature::by_name("pni"), Some(Feature::Sse3));
        assert_eq!(Feature::by_name("sse3"), Some(Feature::Sse3));
        assert_eq!(Feature::by_name("bogus"), None);
    }

    #[test]
    fn sets() {
        let mut s = FeatureSet::of(&[Feature::Sse, Feature::Ibpb]);
        assert!(s.contains(Feature::Ibpb) && !s.contains(Feature::Sse2));
        s.remove(Feature::Sse);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![Feature::Ibpb]);
        assert!(FeatureSet::implemented().contains(Feature::Lm));
    }
}
