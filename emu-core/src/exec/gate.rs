//! Which instructions the vCPU's CPU model has: decided once per decoded
//! instruction from iced-x86's per-`Code` CPUID feature list and the
//! vCPU's CPUID table.
//!
//! An instruction whose features are all advertised runs its handler (and
//! if softvm has none, that is a softvm bug: an internal error, status 6
//! of `softvm run`). One that needs a feature the model does not advertise
//! behaves as on a processor without it: #UD, except the encodings that
//! older processors execute as something else:
//!
//! - ENDBR32/ENDBR64, RDSSPD/RDSSPQ, CLDEMOTE and PREFETCHIT0/1 live in
//!   the reserved-NOP space (0F 18-0F 1F) and run as NOPs; so does
//!   PREFETCHWT1 (0F 0D /2), a prefetch alias on AMD processors and a
//!   NOP on Intel ones without it (the host runs it without a fault);
//! - the MPX forms (0F 1A/0F 1B) are decoded as the NOPs they are without
//!   MPX (softvm never sets iced's `MPX` decoder option);
//! - LZCNT and TZCNT (F3 0F BD/BC) run as BSR and BSF, WBNOINVD (F3 0F 09)
//!   as WBINVD, and LAHF/SAHF in 64-bit mode are invalid, through iced's
//!   decoder options;
//! - the vendor picks iced's decoder (AMD: 16-bit near branches in 64-bit
//!   mode, UD0 without ModRM, LOCK MOV CR0 as MOV CR8, which in turn needs
//!   the AMD `cr8legacy` feature), and AMD processors raise #UD for the
//!   register forms of 0F 0D, which Intel processors run as NOPs.

use super::Exec;
use crate::cpu::model::{Feature, FeatureSet, Vendor};
use crate::cpuid::Cpuid;
use crate::exception::{Exception, ExecResult};
use iced_x86::{Code, CpuidFeature, DecoderOptions, Instruction, Mnemonic, OpKind};

/// What running a decoded instruction means on this model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Every feature it needs is advertised: run its handler.
    Present,
    /// Absent, and executes as a NOP on processors without the feature.
    Nop,
    /// Absent: #UD.
    Undefined,
}

/// The per-vCPU instruction gate, derived from its CPUID table.
#[derive(Clone, Debug)]
pub struct Gate {
    /// One bit per iced `CpuidFeature`: available.
    available: [u64; 3],
    /// The options the decoder uses for this model.
    pub decoder_options: u32,
    pub vendor: Vendor,
    /// The model's features (advertised and implemented).
    pub features: FeatureSet,
}

impl Gate {
    /// The gate for a CPUID table. Only features softvm implements can
    /// open it: a VMM may advertise more, but what softvm cannot run stays
    /// #UD rather than becoming an internal error.
    pub fn from_cpuid(cpuid: &Cpuid) -> Gate {
        let features = FeatureSet::from_cpuid(|l, s| cpuid.lookup(l, s))
            .intersection(FeatureSet::implemented());
        let vendor = Vendor::from_cpuid(cpuid.lookup(0, 0));
        let mut available = [0u64; 3];
        for f in CpuidFeature::values() {
            if requirement(f).is_some_and(|req| req.is_none_or(|r| features.contains(r))) {
                available[f as usize / 64] |= 1 << (f as usize % 64);
            }
        }
        let mut opts = DecoderOptions::NONE;
        if vendor == Vendor::Amd {
            opts |= DecoderOptions::AMD;
        }
        if !features.contains(Feature::Abm) {
            opts |= DecoderOptions::NO_MPFX_0FBD;
        }
        if !features.contains(Feature::Bmi1) {
            opts |= DecoderOptions::NO_MPFX_0FBC;
        }
        if !features.contains(Feature::LahfLm) {
            opts |= DecoderOptions::NO_LAHF_SAHF_64;
        }
        if !features.contains(Feature::Wbnoinvd) {
            opts |= DecoderOptions::NO_WBNOINVD;
        }
        Gate {
            available,
            decoder_options: opts,
            vendor,
            features,
        }
    }

    #[inline]
    fn has(&self, f: CpuidFeature) -> bool {
        self.available[f as usize / 64] & (1 << (f as usize % 64)) != 0
    }

    /// Whether this model has every feature `code` needs.
    pub fn code_present(&self, code: Code) -> bool {
        code.cpuid_features().iter().all(|&f| self.has(f))
    }

    /// What a decoded instruction does on this model. `bytes` are the
    /// instruction's bytes (the LOCK MOV CR0 check needs its prefixes).
    pub fn availability(&self, ins: &Instruction, bytes: &[u8]) -> Availability {
        let code = ins.code();
        if !self.code_present(code) {
            return match code.mnemonic() {
                Mnemonic::Endbr32
                | Mnemonic::Endbr64
                | Mnemonic::Rdsspd
                | Mnemonic::Rdsspq
                | Mnemonic::Cldemote
                | Mnemonic::Prefetchit0
                | Mnemonic::Prefetchit1
                | Mnemonic::Prefetchwt1 => Availability::Nop,
                _ => Availability::Undefined,
            };
        }
        if self.vendor == Vendor::Amd {
            // AMD: the register forms of 0F 0D are #UD.
            if is_0f0d_nop(code) && ins.op0_kind() == OpKind::Register {
                return Availability::Undefined;
            }
            // AMD's LOCK MOV CR0 means CR8 only with `cr8legacy`. iced
            // decodes it as MOV CR8 and drops the LOCK, so look at the
            // prefixes.
            if is_mov_cr8(ins)
                && has_lock_prefix(bytes)
                && !self.features.contains(Feature::Cr8legacy)
            {
                return Availability::Undefined;
            }
        }
        Availability::Present
    }
}

fn is_mov_cr8(ins: &Instruction) -> bool {
    use iced_x86::Register;
    matches!(
        ins.code(),
        Code::Mov_cr_r32 | Code::Mov_cr_r64 | Code::Mov_r32_cr | Code::Mov_r64_cr
    ) && (ins.op0_register() == Register::CR8 || ins.op1_register() == Register::CR8)
}

/// Whether the legacy prefixes of an instruction include LOCK (F0).
fn has_lock_prefix(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .take_while(|b| {
            matches!(
                b,
                0xf0 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 | 0x66 | 0x67
            )
        })
        .any(|&b| b == 0xf0)
}

fn is_0f0d_nop(code: Code) -> bool {
    matches!(
        code,
        Code::Reservednop_rm16_r16_0F0D
            | Code::Reservednop_rm32_r32_0F0D
            | Code::Reservednop_rm64_r64_0F0D
    )
}

/// Which model feature an iced feature needs: `Some(None)` = every
/// processor softvm models has it, `Some(Some(f))` = feature `f`, `None` =
/// never (features softvm does not model at all).
fn requirement(f: CpuidFeature) -> Option<Option<Feature>> {
    use CpuidFeature as C;
    use Feature as F;
    Some(Some(match f {
        C::INTEL8086
        | C::INTEL186
        | C::INTEL286
        | C::INTEL386
        | C::INTEL486
        | C::CPUID
        | C::MULTIBYTENOP
        | C::PAUSE
        | C::RDPMC => return Some(None),
        C::X64 => F::Lm,
        C::FPU | C::FPU387 => F::Fpu,
        C::TSC => F::Tsc,
        C::MSR => F::Msr,
        C::CX8 => F::Cx8,
        C::SEP => F::Sep,
        C::CMOV => F::Cmov,
        C::CLFSH => F::Clflush,
        C::MMX => F::Mmx,
        C::FXSR => F::Fxsr,
        C::SSE => F::Sse,
        C::SSE2 => F::Sse2,
        C::SSE3 => F::Sse3,
        C::SSSE3 => F::Ssse3,
        C::SSE4_1 => F::Sse41,
        C::SSE4_2 => F::Sse42,
        C::PCLMULQDQ => F::Pclmulqdq,
        C::MONITOR => F::Monitor,
        C::VMX => F::Vmx,
        C::SMX => F::Smx,
        C::FMA => F::Fma,
        C::CMPXCHG16B => F::Cx16,
        C::MOVBE => F::Movbe,
        C::POPCNT => F::Popcnt,
        C::AES => F::Aes,
        C::XSAVE => F::Xsave,
        C::AVX => F::Avx,
        C::F16C => F::F16c,
        C::RDRAND => F::Rdrand,
        C::FSGSBASE => F::Fsgsbase,
        C::BMI1 => F::Bmi1,
        C::HLE => F::Hle,
        C::AVX2 => F::Avx2,
        C::BMI2 => F::Bmi2,
        C::INVPCID => F::Invpcid,
        C::RTM => F::Rtm,
        C::MPX => F::Mpx,
        C::RDSEED => F::Rdseed,
        C::ADX => F::Adx,
        C::SMAP => F::Smap,
        C::CLFLUSHOPT => F::Clflushopt,
        C::CLWB => F::Clwb,
        C::SHA => F::ShaNi,
        C::PKU => F::Pku,
        C::WAITPKG => F::Waitpkg,
        C::CET_SS => F::CetSs,
        C::CET_IBT => F::CetIbt,
        C::GFNI => F::Gfni,
        C::VAES => F::Vaes,
        C::VPCLMULQDQ => F::Vpclmulqdq,
        C::RDPID => F::Rdpid,
        C::CLDEMOTE => F::Cldemote,
        C::MOVDIRI => F::Movdiri,
        C::MOVDIR64B => F::Movdir64b,
        C::SERIALIZE => F::Serialize,
        C::TSXLDTRK => F::Tsxldtrk,
        C::XSAVEOPT => F::Xsaveopt,
        C::XSAVEC => F::Xsavec,
        C::XSAVES => F::Xsaves,
        C::SYSCALL => F::Syscall,
        C::RDTSCP => F::Rdtscp,
        C::LZCNT => F::Abm,
        C::PREFETCHW => F::Prefetchw,
        C::SVM => F::Svm,
        C::SKINIT => F::Skinit,
        C::SSE4A => F::Sse4a,
        C::XOP => F::Xop,
        C::FMA4 => F::Fma4,
        C::TBM => F::Tbm,
        C::LWP => F::Lwp,
        C::CLZERO => F::Clzero,
        C::RDPRU => F::Rdpru,
        C::WBNOINVD => F::Wbnoinvd,
        C::D3NOW => F::D3now,
        C::D3NOWEXT => F::D3nowext,
        C::AVX512F => F::Avx512f,
        C::AVX512DQ => F::Avx512dq,
        C::AVX512CD => F::Avx512cd,
        C::AVX512BW => F::Avx512bw,
        C::AVX512VL => F::Avx512vl,
        C::AVX512_IFMA => F::Avx512ifma,
        C::AVX512_VBMI => F::Avx512vbmi,
        C::AVX512_VBMI2 => F::Avx512vbmi2,
        C::AVX512_VNNI => F::Avx512vnni,
        C::AVX512_BITALG => F::Avx512bitalg,
        C::AVX512_VPOPCNTDQ => F::Avx512vpopcntdq,
        C::AVX512_VP2INTERSECT => F::Avx512vp2intersect,
        C::AVX512PF => F::Avx512pf,
        C::AVX512ER => F::Avx512er,
        _ => return None,
    }))
}

/// The handler of an absent instruction that raises #UD.
pub(crate) fn absent_ud(_x: &mut Exec, _ins: &Instruction) -> ExecResult {
    Err(Exception::ud().into())
}

/// The handler of an absent instruction that older processors run as a
/// NOP (its memory operand, if any, is not accessed).
pub(crate) fn absent_nop(_x: &mut Exec, _ins: &Instruction) -> ExecResult {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::model::CpuModel;
    use iced_x86::Decoder;

    fn decode(gate: &Gate, bytes: &[u8]) -> Instruction {
        Decoder::with_ip(64, bytes, 0, gate.decoder_options).decode()
    }

    #[test]
    fn iced_features_fit_the_bitset() {
        assert!(CpuidFeature::values().all(|f| (f as usize) < 3 * 64));
    }

    #[test]
    fn absent_features_are_ud_or_nop() {
        let max = Gate::from_cpuid(&Cpuid::for_model(&CpuModel::max(), 0, 1));
        let endbr = decode(&max, &[0xf3, 0x0f, 0x1e, 0xfa]);
        assert_eq!(endbr.code(), Code::Endbr64);
        assert_eq!(max.availability(&endbr, &[]), Availability::Nop);
        let avx = decode(&max, &[0xc5, 0xf8, 0x28, 0xc1]); // vmovaps xmm0, xmm1
        assert_eq!(max.availability(&avx, &[]), Availability::Undefined);
        let wt1 = decode(&max, &[0x0f, 0x0d, 0x50, 0x10]);
        assert_eq!(wt1.code(), Code::Prefetchwt1_m8);
        assert_eq!(max.availability(&wt1, &[]), Availability::Nop);
        let popcnt = decode(&max, &[0xf3, 0x0f, 0xb8, 0xc0]);
        assert_eq!(max.availability(&popcnt, &[]), Availability::Present);
    }

    #[test]
    fn lzcnt_without_abm_decodes_as_bsr() {
        let model = CpuModel::parse("qemu64").unwrap().model;
        let g = Gate::from_cpuid(&Cpuid::for_model(&model, 0, 1));
        assert_eq!(g.vendor, Vendor::Amd);
        let i = decode(&g, &[0xf3, 0x0f, 0xbd, 0xc1]);
        assert_eq!(i.mnemonic(), Mnemonic::Bsr);
        let p = decode(&g, &[0xf3, 0x0f, 0xb8, 0xc0]);
        assert_eq!(
            g.availability(&p, &[]),
            Availability::Undefined,
            "qemu64 has no POPCNT"
        );
        let max = Gate::from_cpuid(&Cpuid::for_model(&CpuModel::max(), 0, 1));
        assert_eq!(
            decode(&max, &[0xf3, 0x0f, 0xbd, 0xc1]).mnemonic(),
            Mnemonic::Lzcnt
        );
    }

    #[test]
    fn amd_register_form_of_0f0d_is_ud() {
        let bytes = [0x0f, 0x0d, 0xc0];
        let intel = Gate::from_cpuid(&Cpuid::for_model(&CpuModel::max(), 0, 1));
        assert_eq!(
            intel.availability(&decode(&intel, &bytes), &bytes),
            Availability::Present
        );
        let amd_model = CpuModel::parse("max,vendor=AuthenticAMD").unwrap().model;
        let amd = Gate::from_cpuid(&Cpuid::for_model(&amd_model, 0, 1));
        assert_eq!(
            amd.availability(&decode(&amd, &bytes), &bytes),
            Availability::Undefined
        );
        let lock = [0xf0, 0x0f, 0x22, 0xc0];
        assert_eq!(
            amd.availability(&decode(&amd, &lock), &lock),
            Availability::Undefined
        );
        let rex_r = [0x44, 0x0f, 0x22, 0xc0];
        assert_eq!(
            amd.availability(&decode(&amd, &rex_r), &rex_r),
            Availability::Present
        );
    }
}
