//! The CPUID table of a vCPU, built from its CPU model
//! ([`crate::cpu::model`]). Every feature bit set here is implemented; a
//! VMM may replace the table with `Vcpu::set_cpuid` (features softvm lacks
//! stay #UD whatever the table says).
//!
//! A few values are not in the table because they follow the vCPU's state
//! at the time CPUID runs (see `ops::misc::cpuid`): OSXSAVE (CR4), the
//! APIC bit (IA32_APIC_BASE.EN), and the XSAVE area size for the current
//! XCR0 (leaf 0xD).

use crate::cpu::fpu::xcr0;
use crate::cpu::model::{CpuModel, Feature, Vendor, FEATURES};

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

/// Leaf 1 EDX: the APIC bit (cleared while IA32_APIC_BASE.EN is clear).
pub const LEAF1_EDX_APIC: u32 = 1 << 9;
/// Leaf 1 EDX: HTT (more than one logical processor per package).
pub const LEAF1_EDX_HTT: u32 = 1 << 28;
/// Leaf 1 ECX: OSXSAVE (mirrors CR4.OSXSAVE).
pub const LEAF1_ECX_OSXSAVE: u32 = 1 << 27;

/// Leaf 1 EDX bits AMD processors repeat in leaf 0x8000_0001 EDX (FPU,
/// VME, DE, PSE, TSC, MSR, PAE, MCE, CX8, APIC, MTRR, PGE, MCA, CMOV, PAT,
/// PSE36, MMX, FXSR).
const AMD_EDX_ALIASES: u32 = 0x0183_f3ff;

/// The size of the XSAVE area (legacy region and header) for x87 and SSE
/// state, the only components softvm implements: 512 + 64 bytes.
pub const XSAVE_SIZE: u32 = 576;

/// The CPUID table of one vCPU.
#[derive(Clone, Debug)]
pub struct Cpuid {
    pub entries: Vec<CpuidEntry>,
}

fn entry(function: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> CpuidEntry {
    CpuidEntry {
        function,
        index: 0,
        indexed: false,
        eax,
        ebx,
        ecx,
        edx,
    }
}

fn sub(function: u32, index: u32, regs: [u32; 4]) -> CpuidEntry {
    CpuidEntry {
        function,
        index,
        indexed: true,
        eax: regs[0],
        ebx: regs[1],
        ecx: regs[2],
        edx: regs[3],
    }
}

/// Four little-endian words of a string, NUL-padded.
fn words(s: &[u8], at: usize) -> [u32; 4] {
    let b = |i: usize| s.get(at + i).copied().unwrap_or(0);
    let w = |k: usize| u32::from_le_bytes([b(4 * k), b(4 * k + 1), b(4 * k + 2), b(4 * k + 3)]);
    [w(0), w(1), w(2), w(3)]
}

impl Cpuid {
    /// softvm's default model (`max`) for vCPU `apic_id` of `ncpus`.
    pub fn default_model(apic_id: u32, ncpus: u32) -> Cpuid {
        Cpuid::for_model(&CpuModel::max(), apic_id, ncpus)
    }

    /// The table of `model` for vCPU `apic_id` of `ncpus`.
    pub fn for_model(model: &CpuModel, apic_id: u32, ncpus: u32) -> Cpuid {
        // Feature words: (leaf, sub-leaf, register) -> bits.
        let bits = |leaf: u32, subleaf: u32, reg: usize| -> u32 {
            FEATURES
                .iter()
                .filter(|f| f.leaf == leaf && f.sub == subleaf && f.reg as usize == reg)
                .filter(|f| model.has(f.feature))
                .fold(0, |a, f| a | (1 << f.bit))
        };
        let vendor = model.vendor.id();
        let v = words(vendor, 0);
        let fms = {
            let (fam, m) = (model.family, model.model);
            let (base_fam, ext_fam) = if fam > 15 { (15, fam - 15) } else { (fam, 0) };
            (ext_fam << 20) | ((m >> 4) << 16) | (base_fam << 8) | ((m & 0xf) << 4) | model.stepping
        };
        let mut edx1 = bits(1, 0, 3);
        if ncpus > 1 {
            edx1 |= LEAF1_EDX_HTT;
        }
        let ebx1 = (apic_id << 24) | (ncpus.min(255) << 16) | (8 << 8);
        let xsave = model.has(Feature::Xsave);
        let mut entries = vec![
            entry(0, if xsave { 0xd } else { 0xb }, v[0], v[2], v[1]),
            entry(1, fms, ebx1, bits(1, 0, 2), edx1),
            sub(7, 0, [0, bits(7, 0, 1), bits(7, 0, 2), bits(7, 0, 3)]),
        ];
        // Leaf 0xB: x2APIC topology, one thread per core, `ncpus` cores.
        let core_shift = 32 - ncpus.max(1).next_power_of_two().leading_zeros() - 1;
        entries.push(sub(0xb, 0, [0, 1, 0x100, apic_id]));
        entries.push(sub(0xb, 1, [core_shift, ncpus, 0x201, apic_id]));
        entries.push(sub(0xb, 2, [0, 0, 2, apic_id]));
        if xsave {
            let supported = xcr0::SUPPORTED as u32;
            // Sub-leaf 0: components, size for the enabled ones (filled in
            // at CPUID time), size for all. Sub-leaf 1: the XSAVE
            // extensions and the compacted size. Sub-leaf 1 EBX, like
            // sub-leaf 0 EBX, is the size for the enabled components.
            entries.push(sub(0xd, 0, [supported, XSAVE_SIZE, XSAVE_SIZE, 0]));
            entries.push(sub(0xd, 1, [bits(0xd, 1, 0), XSAVE_SIZE, 0, 0]));
        }
        let mut ext_edx = bits(0x8000_0001, 0, 3);
        let ext_vendor = if model.vendor == Vendor::Amd {
            ext_edx |= edx1 & AMD_EDX_ALIASES;
            v
        } else {
            [0; 4]
        };
        entries.push(entry(
            0x8000_0000,
            0x8000_0008,
            ext_vendor[0],
            ext_vendor[2],
            ext_vendor[1],
        ));
        entries.push(entry(
            0x8000_0001,
            if model.vendor == Vendor::Amd { fms } else { 0 },
            0,
            bits(0x8000_0001, 0, 2),
            ext_edx,
        ));
        let brand = model.brand.as_bytes();
        for (k, f) in [0x8000_0002u32, 0x8000_0003, 0x8000_0004]
            .into_iter()
            .enumerate()
        {
            let w = words(&brand[..brand.len().min(47)], k * 16);
            entries.push(entry(f, w[0], w[1], w[2], w[3]));
        }
        entries.push(entry(0x8000_0007, 0, 0, 0, bits(0x8000_0007, 0, 3)));
        // 48-bit linear addresses; the model's physical width.
        let cores = if model.vendor == Vendor::Amd {
            ncpus.max(1) - 1
        } else {
            0
        };
        entries.push(entry(
            0x8000_0008,
            0x3000 | u32::from(model.phys_bits),
            bits(0x8000_0008, 0, 1),
            cores,
            0,
        ));
        Cpuid { entries }
    }

    /// Look a leaf up. Unknown leaves read as zero, as the highest basic
    /// leaf would on Intel processors.
    pub fn lookup(&self, function: u32, index: u32) -> [u32; 4] {
        self.entries
            .iter()
            .find(|e| e.function == function && (!e.indexed || e.index == index))
            .map(|e| [e.eax, e.ebx, e.ecx, e.edx])
            .unwrap_or([0; 4])
    }

    /// The physical address width the table reports (MAXPHYADDR), 36 if
    /// leaf 0x8000_0008 is absent (SDM Vol. 3A, 4.1.4).
    pub fn phys_bits(&self) -> u8 {
        match self.lookup(0x8000_0008, 0)[0] & 0xff {
            0 => 36,
            b => b as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::model::FeatureSet;

    #[test]
    fn the_table_advertises_exactly_the_model() {
        for spec in [
            "max",
            "qemu64,+x2apic",
            "IvyBridge",
            "Opteron_G1,vendor=AuthenticAMD",
        ] {
            let m = CpuModel::parse(spec).unwrap().model;
            let t = Cpuid::for_model(&m, 1, 2);
            // HTT is set for more than one vCPU, not by the model.
            let mut back = FeatureSet::from_cpuid(|l, s| t.lookup(l, s));
            back.remove(Feature::Ht);
            assert_eq!(back, m.features, "{spec}");
            assert_eq!(Vendor::from_cpuid(t.lookup(0, 0)), m.vendor, "{spec}");
        }
    }

    #[test]
    fn leaf_1_and_brand() {
        let t = Cpuid::default_model(3, 4);
        let l1 = t.lookup(1, 0);
        assert_eq!(l1[1] >> 24, 3);
        assert_eq!((l1[1] >> 16) & 0xff, 4);
        assert_ne!(l1[3] & LEAF1_EDX_HTT, 0);
        // x86-64-v2: FPU, MMX, FXSR, SSE, SSE2, SSE3, SSSE3, SSE4.1/4.2,
        // POPCNT, CX16; LAHF in 64-bit mode.
        for f in [0u32, 23, 24, 25, 26] {
            assert_ne!(l1[3] & (1 << f), 0, "edx bit {f}");
        }
        for f in [0u32, 9, 13, 19, 20, 23] {
            assert_ne!(l1[2] & (1 << f), 0, "ecx bit {f}");
        }
        assert_ne!(t.lookup(0x8000_0001, 0)[2] & 1, 0);
        let mut brand = Vec::new();
        for f in 0x8000_0002..=0x8000_0004 {
            for w in t.lookup(f, 0) {
                brand.extend_from_slice(&w.to_le_bytes());
            }
        }
        assert!(brand.starts_with(b"softvm x86-64 interpreter\0"));
        assert_eq!(t.phys_bits(), 48);
    }

    #[test]
    fn family_encoding() {
        let m = CpuModel::parse("EPYC").unwrap().model;
        let eax = Cpuid::for_model(&m, 0, 1).lookup(1, 0)[0];
        // Family 23 = base 15 + extended 8; model 1.
        assert_eq!((eax >> 8) & 0xf, 15);
        assert_eq!((eax >> 20) & 0xff, 8);
        assert_eq!((eax >> 4) & 0xf, 1);
    }
}
