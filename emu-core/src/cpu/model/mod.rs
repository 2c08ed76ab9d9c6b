//! The CPU model: which processor a vCPU claims to be (vendor, family,
//! model, stepping, features, physical address width), chosen with QEMU's
//! `-cpu` syntax:
//!
//! ```text
//! MODEL[,+feature][,-feature][,feature=on|off][,vendor=GenuineIntel|AuthenticAMD]
//!      [,phys-bits=N][,host-phys-bits[=on|off]][,migratable=...][,check][,enforce]
//! ```
//!
//! `max` (the default) is every feature softvm implements, with an Intel
//! vendor; `host` is the same with the host processor's vendor (so that
//! tests that compare with the host see its vendor's behaviour); the named
//! models are QEMU's feature sets (see [`named`]). softvm advertises only
//! what it implements: the features of a named model or a `+feature` that
//! softvm lacks are dropped and reported (QEMU's TCG does the same), and
//! with `enforce` they are an error. An unknown model, feature or property
//! is an error naming what is known.
//!
//! The model decides the CPUID table ([`crate::cpuid::Cpuid::for_model`]),
//! and through it which instructions run (see `exec::gate`).

pub mod features;
pub mod named;

pub use features::{Feature, FeatureInfo, FeatureSet, FEATURES};

/// The processor vendor: it changes CPUID leaf 0's string and what differs
/// between Intel and AMD processors (SYSCALL outside 64-bit mode,
/// SYSENTER in long mode, RDPRU, some undefined flags, the decoder).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vendor {
    Intel,
    Amd,
}

impl Vendor {
    /// The 12-byte CPUID vendor string.
    pub fn id(self) -> &'static [u8; 12] {
        match self {
            Vendor::Intel => b"GenuineIntel",
            Vendor::Amd => b"AuthenticAMD",
        }
    }

    /// The vendor a CPUID leaf 0 result names (anything not AMD-compatible
    /// behaves as Intel).
    pub fn from_cpuid(leaf0: [u32; 4]) -> Vendor {
        let mut id = [0u8; 12];
        id[..4].copy_from_slice(&leaf0[1].to_le_bytes());
        id[4..8].copy_from_slice(&leaf0[3].to_le_bytes());
        id[8..].copy_from_slice(&leaf0[2].to_le_bytes());
        match &id {
            b"AuthenticAMD" | b"HygonGenuine" => Vendor::Amd,
            _ => Vendor::Intel,
        }
    }

    fn parse(s: &str) -> Option<Vendor> {
        match s {
            "GenuineIntel" => Some(Vendor::Intel),
            "AuthenticAMD" => Some(Vendor::Amd),
            _ => None,
        }
    }

    /// The host processor's vendor (Intel on hosts that are not x86).
    pub fn host() -> Vendor {
        #[cfg(target_arch = "x86_64")]
        {
            let r = std::arch::x86_64::__cpuid(0);
            Vendor::from_cpuid([r.eax, r.ebx, r.ecx, r.edx])
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Vendor::Intel
        }
    }
}

/// The physical address width `max` reports (and softmmu checks reserved
/// bits against), as QEMU's TCG does by default... unless told otherwise.
pub const DEFAULT_PHYS_BITS: u8 = 48;

/// A CPU model, ready to build CPUID tables from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// The model name it was built from (`max`, `qemu64`, ...).
    pub name: String,
    pub vendor: Vendor,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    /// The advertised features (all implemented).
    pub features: FeatureSet,
    /// MAXPHYADDR (CPUID 0x8000_0008 EAX bits 7:0).
    pub phys_bits: u8,
    /// The brand string (CPUID 0x8000_0002..4).
    pub brand: String,
}

/// A parsed `-cpu` line: the model, and what it could not honour.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub model: CpuModel,
    /// Features the line asked for by name (`+feature`, `feature=on`)
    /// that softvm does not implement, so does not advertise: worth a
    /// warning.
    pub dropped: Vec<Feature>,
    /// Features of the named model softvm does not implement (not
    /// advertised either; QEMU's TCG drops its own gaps the same way).
    pub model_gaps: Vec<Feature>,
    /// Feature names QEMU knows that are not CPUID bits softvm models
    /// (VMX and SVM capabilities, KVM paravirtual features), requested
    /// with `+` or `=on`: ignored.
    pub ignored: Vec<String>,
}

/// QEMU feature names that are not CPUID feature bits in softvm's model:
/// accepted, and ignored (reported when asked for). The VMX capability
/// names all start with `vmx-`.
const OTHER_KNOWN: &[&str] = &[
    "npt",
    "nrip-save",
    "lbrv",
    "svm-lock",
    "tsc-scale",
    "vmcb-clean",
    "flushbyasid",
    "decodeassists",
    "pause-filter",
    "pfthreshold",
    "avic",
    "v-vmsave-vmload",
    "vgif",
    "vnmi",
    "kvmclock",
    "kvmclock2",
    "kvm-nopiodelay",
    "kvm-mmu",
    "kvm-asyncpf",
    "kvm-steal-time",
    "kvm-pv-eoi",
    "kvm-pv-unhalt",
    "kvm-pv-tlb-flush",
    "kvm-pv-ipi",
    "kvm-poll-control",
    "kvm-pv-sched-yield",
    "kvm-asyncpf-int",
    "kvmclock-stable-bit",
    "kvm-msi-ext-dest-id",
    "pmu",
    "lmce",
    "kvm",
];

fn other_known(name: &str) -> bool {
    name.starts_with("vmx-") || OTHER_KNOWN.contains(&name)
}

/// Why a `-cpu` line was refused.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// The model name is unknown.
    #[error("unknown CPU model '{name}' (known: {known})")]
    UnknownModel { name: String, known: String },
    /// A `+feature`, `-feature` or `feature=on|off` names no feature.
    #[error("unknown CPU feature '{name}' (see `-cpu help` for the known ones)")]
    UnknownFeature { name: String },
    /// A property softvm does not model.
    #[error("CPU property '{name}' is not supported by softvm (supported: vendor, phys-bits, host-phys-bits, migratable, check, enforce, and features)")]
    UnknownProperty { name: String },
    /// A property value out of range or malformed.
    #[error("bad value '{value}' for CPU property '{name}': {expected}")]
    BadValue {
        name: String,
        value: String,
        expected: &'static str,
    },
    /// `enforce` and features softvm lacks.
    #[error("CPU features not implemented by softvm: {0} (drop 'enforce' to run without them)")]
    Enforce(String),
}

impl CpuModel {
    /// Every implemented feature, Intel vendor: softvm's default.
    pub fn max() -> CpuModel {
        CpuModel {
            name: "max".to_string(),
            vendor: Vendor::Intel,
            // Family 6, model 0x55 (a documented fiction: no processor has
            // exactly this feature set).
            family: 6,
            model: 0x55,
            stepping: 1,
            features: FeatureSet::implemented(),
            phys_bits: DEFAULT_PHYS_BITS,
            brand: "softvm x86-64 interpreter".to_string(),
        }
    }

    /// `max` with the host's vendor.
    pub fn host() -> CpuModel {
        let vendor = Vendor::host();
        CpuModel {
            name: "host".to_string(),
            vendor,
            family: if vendor == Vendor::Amd { 0x17 } else { 6 },
            model: if vendor == Vendor::Amd { 1 } else { 0x55 },
            ..CpuModel::max()
        }
    }

    /// Parse a `-cpu` line (see the module docs).
    pub fn parse(spec: &str) -> Result<Parsed, ModelError> {
        let mut parts = spec.split(',');
        let name = parts.next().unwrap_or("").trim();
        let (mut model, mut wanted) = match name {
            "max" | "" => (CpuModel::max(), FeatureSet::implemented()),
            "host" => (CpuModel::host(), FeatureSet::implemented()),
            _ => {
                let Some(m) = named::by_name(name) else {
                    return Err(ModelError::UnknownModel {
                        name: name.to_string(),
                        known: known_models(),
                    });
                };
                let all = FeatureSet::of(&m.features.concat());
                let model = CpuModel {
                    name: m.name.to_string(),
                    vendor: m.vendor,
                    family: m.family,
                    model: m.model,
                    stepping: m.stepping,
                    features: FeatureSet::EMPTY,
                    phys_bits: DEFAULT_PHYS_BITS,
                    brand: m.description.to_string(),
                };
                (model, all)
            }
        };
        let model_set = wanted;
        let mut explicit = FeatureSet::EMPTY;
        let mut enforce = false;
        let mut ignored = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            if let Some(f) = p.strip_prefix('+') {
                if other_known(f) {
                    ignored.push(f.to_string());
                } else {
                    let f = feature(f)?;
                    wanted.insert(f);
                    explicit.insert(f);
                }
                continue;
            }
            if let Some(f) = p.strip_prefix('-') {
                if !other_known(f) {
                    let f = feature(f)?;
                    wanted.remove(f);
                    explicit.remove(f);
                }
                continue;
            }
            let (key, value) = match p.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (p, None),
            };
            match key {
                "vendor" => {
                    let v = value.unwrap_or("");
                    model.vendor = Vendor::parse(v).ok_or_else(|| ModelError::BadValue {
                        name: key.to_string(),
                        value: v.to_string(),
                        expected: "GenuineIntel or AuthenticAMD",
                    })?;
                }
                "phys-bits" => {
                    let v = value.unwrap_or("");
                    model.phys_bits = v
                        .parse::<u8>()
                        .ok()
                        .filter(|b| (32..=52).contains(b))
                        .ok_or_else(|| ModelError::BadValue {
                            name: key.to_string(),
                            value: v.to_string(),
                            expected: "a number of bits from 32 to 52",
                        })?;
                }
                "host-phys-bits" => {
                    if on_off(key, value)? {
                        model.phys_bits = host_phys_bits();
                    }
                }
                "migratable" | "check" => {
                    on_off(key, value)?;
                }
                "enforce" => enforce = on_off(key, value)?,
                _ if other_known(key) => {
                    if on_off(key, value)? {
                        ignored.push(key.to_string());
                    }
                }
                _ => match Feature::by_name(key) {
                    Some(f) => {
                        if on_off(key, value)? {
                            wanted.insert(f);
                            explicit.insert(f);
                        } else {
                            wanted.remove(f);
                            explicit.remove(f);
                        }
                    }
                    None => {
                        return Err(ModelError::UnknownProperty {
                            name: key.to_string(),
                        })
                    }
                },
            }
        }
        let implemented = FeatureSet::implemented();
        let missing = wanted.difference(implemented);
        if enforce && !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|f| f.name()).collect();
            return Err(ModelError::Enforce(names.join(", ")));
        }
        model.features = wanted.intersection(implemented);
        Ok(Parsed {
            model,
            dropped: missing.intersection(explicit).iter().collect(),
            model_gaps: missing
                .intersection(model_set)
                .difference(explicit)
                .iter()
                .collect(),
            ignored,
        })
    }

    pub fn has(&self, f: Feature) -> bool {
        self.features.contains(f)
    }
}

impl Default for CpuModel {
    fn default() -> Self {
        CpuModel::max()
    }
}

fn feature(name: &str) -> Result<Feature, ModelError> {
    Feature::by_name(name).ok_or_else(|| ModelError::UnknownFeature {
        name: name.to_string(),
    })
}

/// A QEMU boolean property: bare (on), `on|off|yes|no|true|false`.
fn on_off(key: &str, value: Option<&str>) -> Result<bool, ModelError> {
    match value {
        None | Some("on") | Some("yes") | Some("true") => Ok(true),
        Some("off") | Some("no") | Some("false") => Ok(false),
        Some(v) => Err(ModelError::BadValue {
            name: key.to_string(),
            value: v.to_string(),
            expected: "on or off",
        }),
    }
}

/// The host's physical address width, or the default where it cannot be
/// read.
fn host_phys_bits() -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        let max = std::arch::x86_64::__cpuid(0x8000_0000).eax;
        if max >= 0x8000_0008 {
            let bits = (std::arch::x86_64::__cpuid(0x8000_0008).eax & 0xff) as u8;
            if (32..=52).contains(&bits) {
                return bits;
            }
        }
    }
    DEFAULT_PHYS_BITS
}

/// The model names `-cpu` accepts, comma-separated.
pub fn known_models() -> String {
    let mut v = vec!["max", "host"];
    v.extend(named::MODELS.iter().map(|m| m.name));
    v.join(", ")
}

/// What `-cpu help` prints: models, then feature names.
pub fn help() -> String {
    let mut s = String::from("Available CPUs:\n");
    s.push_str("x86 max                   Enables all features supported by softvm\n");
    s.push_str("x86 host                  max, with the host processor's vendor\n");
    for m in named::MODELS {
        s.push_str(&format!("x86 {:<22}{}\n", m.name, m.description));
    }
    s.push_str("\nRecognized CPUID flags (* = implemented by softvm):\n");
    let names: Vec<String> = FEATURES
        .iter()
        .map(|f| format!("{}{}", f.name, if f.implemented { "*" } else { "" }))
        .collect();
    for chunk in names.chunks(8) {
        s.push_str(&format!("  {}\n", chunk.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu64_with_changes() {
        let p = CpuModel::parse("qemu64,+x2apic,-pcid,tsc-deadline=on").unwrap();
        let m = p.model;
        assert_eq!(m.vendor, Vendor::Amd);
        assert!(m.has(Feature::X2apic) && m.has(Feature::TscDeadline) && m.has(Feature::Sse2));
        assert!(!m.has(Feature::Popcnt) && !m.has(Feature::Pcid));
        // qemu64 has SVM, which softvm does not implement.
        assert!(p.dropped.is_empty());
        assert!(p.model_gaps.contains(&Feature::Svm));
        assert!(!m.has(Feature::Svm));
    }

    #[test]
    fn vendor_and_properties() {
        let m = CpuModel::parse("max,vendor=AuthenticAMD,phys-bits=36")
            .unwrap()
            .model;
        assert_eq!((m.vendor, m.phys_bits), (Vendor::Amd, 36));
        let m = CpuModel::parse("IvyBridge,phys-bits=36,host-phys-bits=off").unwrap();
        assert_eq!(m.model.phys_bits, 36);
        assert!(m.model.has(Feature::Rdrand) && m.model_gaps.contains(&Feature::Avx));
        assert!(CpuModel::parse("host,migratable=no").is_ok());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = CpuModel::parse("pentium9").unwrap_err();
        assert!(e.to_string().contains("pentium9") && e.to_string().contains("qemu64"));
        let e = CpuModel::parse("max,+warp-drive").unwrap_err();
        assert!(e.to_string().contains("warp-drive"));
        let e = CpuModel::parse("host,hv_passthrough").unwrap_err();
        assert!(e.to_string().contains("hv_passthrough"));
        let e = CpuModel::parse("max,vendor=Cyrix").unwrap_err();
        assert!(e.to_string().contains("GenuineIntel"));
        let e = CpuModel::parse("max,phys-bits=99").unwrap_err();
        assert!(e.to_string().contains("32 to 52"));
        let e = CpuModel::parse("max,+vmx,enforce").unwrap_err();
        assert!(matches!(e, ModelError::Enforce(_)));
        // Without enforce, an unimplemented feature is dropped.
        let p = CpuModel::parse("max,+vmx,-vmx-mbec").unwrap();
        assert_eq!(p.dropped, vec![Feature::Vmx]);
        let p = CpuModel::parse("max,+svm,-npt,+vmx-mbec").unwrap();
        assert_eq!(p.dropped, vec![Feature::Svm]);
        assert_eq!(p.ignored, vec!["vmx-mbec".to_string()]);
    }

    #[test]
    fn every_named_model_parses() {
        for m in named::MODELS {
            let p = CpuModel::parse(m.name).unwrap();
            assert!(p.model.has(Feature::Lm), "{}", m.name);
        }
        assert!(help().contains("Opteron_G1") && help().contains("sse4.2*"));
    }
}
