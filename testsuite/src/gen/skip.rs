//! Which instruction forms can be compared against the host, and why the
//! others cannot.

use iced_x86::{Code, CpuidFeature, Mnemonic, OpCodeOperandKind as K};

/// Why `code` is not compared against the host, or `None` if it is.
pub fn skip_reason(code: Code) -> Option<&'static str> {
    let op = code.op_code();
    if code == Code::INVALID || !op.is_instruction() {
        return Some("not an instruction");
    }
    if !op.mode64() {
        return Some("not valid in 64-bit mode");
    }
    if !(op.intel_decoder64() && op.amd_decoder64()) {
        return Some("decodes differently on Intel and AMD in 64-bit mode");
    }
    if op.fwait() {
        return Some("WAIT followed by the no-wait x87 form: two instructions, each compared");
    }
    if code.is_call_far_indirect() || code.is_jmp_far_indirect() {
        return Some("far control transfer or segment load");
    }
    if let Some(why) = mnemonic_reason(code.mnemonic()) {
        return Some(why);
    }
    if let Some(why) = vendor_reason(code) {
        return Some(why);
    }
    if op.must_be_cpl0() || op.is_privileged() || op.may_require_cpl0() {
        return Some("privileged (faults at the host's CPL 3)");
    }
    if op.is_input_output() {
        return Some("port I/O (faults at the host's CPL 3)");
    }
    for k in op.op_kinds() {
        if !operand_kind_supported(*k) {
            return Some("has an operand kind the generator does not build");
        }
    }
    if is_near_branch(code) && op.operand_size() == 16 {
        return Some("16-bit near branch truncates RIP (vendor-specific in 64-bit mode)");
    }
    host_lacks(code)
}

fn mnemonic_reason(m: Mnemonic) -> Option<&'static str> {
    use Mnemonic::*;
    Some(match m {
        Cpuid => "result depends on the CPU model (emulated model differs from host)",
        Rdtsc | Rdtscp | Rdpid | Rdpmc | Rdpru => "reads time or host-specific state",
        Rdrand | Rdseed => "random result",
        Pause => "spin-loop hint, nothing to compare",
        Rdfsbase | Rdgsbase | Wrfsbase | Wrgsbase | Rdpkru | Wrpkru | Xgetbv | Rdsspd | Rdsspq
        | Lar | Lsl | Verr | Verw | Sgdt | Sidt | Sldt | Str | Smsw => {
            "reads host-specific segment/system state"
        }
        Int | Int1 | Int3 | Into | Ud0 | Ud1 | Ud2 | Syscall | Sysenter | Sysexit | Sysret
        | Iret | Iretd | Iretq | Hlt | Xbegin | Xabort | Xend | Xtest | Bound | Umonitor
        | Umwait | Tpause => "traps or changes privilege by design",
        Retf | Lfs | Lgs | Lss => "far control transfer or segment load",
        Enqcmd | Enqcmds | Movdir64b | Movdiri | Clzero | Serialize => "not comparable natively",
        _ => return None,
    })
}

/// The register forms of the reserved NOP 0F 0D (iced decodes every
/// memory form of 0F 0D as a PREFETCH): a NOP on Intel processors, #UD on
/// AMD ones, where 0F 0D is the PREFETCH group (AMD APM Vol. 3).
pub fn is_reserved_nop_0f0d(code: Code) -> bool {
    matches!(
        code,
        Code::Reservednop_rm16_r16_0F0D
            | Code::Reservednop_rm32_r32_0F0D
            | Code::Reservednop_rm64_r64_0F0D
    )
}

/// Forms whose behaviour depends on the vendor, skipped while softvm's
/// model here has another vendor than the host.
fn vendor_reason(code: Code) -> Option<&'static str> {
    let v = super::diff::vendors();
    if is_reserved_nop_0f0d(code) && v.host == *b"AuthenticAMD" && !v.same() {
        return Some(
            "vendor-specific: AMD raises #UD for the register form of 0F 0D (softvm's model here is not AMD)",
        );
    }
    None
}

fn operand_kind_supported(k: K) -> bool {
    matches!(
        k,
        K::mem_offs
            | K::mem
            | K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r64_or_mem
            | K::r8_reg
            | K::r8_opcode
            | K::r16_reg
            | K::r16_reg_mem
            | K::r16_rm
            | K::r16_opcode
            | K::r32_reg
            | K::r32_reg_mem
            | K::r32_rm
            | K::r32_opcode
            | K::r32_vvvv
            | K::r64_reg
            | K::r64_reg_mem
            | K::r64_rm
            | K::r64_opcode
            | K::r64_vvvv
            | K::al
            | K::cl
            | K::ax
            | K::eax
            | K::rax
            | K::imm8
            | K::imm8_const_1
            | K::imm8sex16
            | K::imm8sex32
            | K::imm8sex64
            | K::imm16
            | K::imm32
            | K::imm32sex64
            | K::imm64
            | K::seg_rSI
            | K::es_rDI
            | K::seg_rBX_al
            | K::br64_1
            | K::br64_4
            | K::seg_rDI
            | K::mm_reg
            | K::mm_rm
            | K::mm_or_mem
            | K::xmm_reg
            | K::xmm_rm
            | K::xmm_or_mem
            | K::st0
            | K::sti_opcode
    )
}

/// Near JMP/CALL/RET/Jcc/LOOP/JrCXZ forms.
pub fn is_near_branch(code: Code) -> bool {
    use Mnemonic::*;
    let m = code.mnemonic();
    matches!(
        m,
        Jmp | Call | Ret | Loop | Loope | Loopne | Jcxz | Jecxz | Jrcxz
    ) || code.is_jcc_short_or_near()
}

/// Features the host must have; anything not listed here is assumed to be
/// part of every x86-64 CPU, or the Code is skipped as unchecked.
fn host_lacks(code: Code) -> Option<&'static str> {
    for f in code.cpuid_features() {
        let ok = match f {
            CpuidFeature::INTEL8086
            | CpuidFeature::INTEL186
            | CpuidFeature::INTEL286
            | CpuidFeature::INTEL386
            | CpuidFeature::INTEL486
            | CpuidFeature::X64
            | CpuidFeature::CMOV
            | CpuidFeature::CX8
            | CpuidFeature::MULTIBYTENOP
            | CpuidFeature::SSE
            | CpuidFeature::SSE2
            | CpuidFeature::FPU
            | CpuidFeature::FPU287
            | CpuidFeature::FPU387
            | CpuidFeature::MMX
            | CpuidFeature::FXSR
            | CpuidFeature::CET_IBT
            | CpuidFeature::CLFSH => true,
            CpuidFeature::SSE3 => detect::sse3(),
            CpuidFeature::SSSE3 => detect::ssse3(),
            CpuidFeature::SSE4_1 => detect::sse41(),
            CpuidFeature::ADX => detect::adx(),
            CpuidFeature::BMI1 => detect::bmi1(),
            CpuidFeature::BMI2 => detect::bmi2(),
            CpuidFeature::LZCNT => detect::lzcnt(),
            CpuidFeature::POPCNT => detect::popcnt(),
            CpuidFeature::MOVBE => detect::movbe(),
            CpuidFeature::CMPXCHG16B => detect::cx16(),
            CpuidFeature::SSE4_2 => detect::sse42(),
            CpuidFeature::AES
            | CpuidFeature::SHA
            | CpuidFeature::GFNI
            | CpuidFeature::PCLMULQDQ
            | CpuidFeature::SSE4A
            | CpuidFeature::KL
            | CpuidFeature::AESKLE => return Some(
                "outside x87, MMX and SSE..SSE4.2 (AES, SHA, GFNI, PCLMULQDQ, SSE4A, Key Locker)",
            ),
            _ => return Some("needs a CPUID feature the harness does not check"),
        };
        if !ok {
            return Some("the host CPU lacks a feature it needs");
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod detect {
    pub fn adx() -> bool {
        std::is_x86_feature_detected!("adx")
    }
    pub fn bmi1() -> bool {
        std::is_x86_feature_detected!("bmi1")
    }
    pub fn bmi2() -> bool {
        std::is_x86_feature_detected!("bmi2")
    }
    pub fn lzcnt() -> bool {
        std::is_x86_feature_detected!("lzcnt")
    }
    pub fn popcnt() -> bool {
        std::is_x86_feature_detected!("popcnt")
    }
    pub fn movbe() -> bool {
        std::is_x86_feature_detected!("movbe")
    }
    pub fn cx16() -> bool {
        std::is_x86_feature_detected!("cmpxchg16b")
    }
    pub fn sse42() -> bool {
        std::is_x86_feature_detected!("sse4.2")
    }
    pub fn sse3() -> bool {
        std::is_x86_feature_detected!("sse3")
    }
    pub fn ssse3() -> bool {
        std::is_x86_feature_detected!("ssse3")
    }
    pub fn sse41() -> bool {
        std::is_x86_feature_detected!("sse4.1")
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod detect {
    pub fn adx() -> bool {
        false
    }
    pub fn bmi1() -> bool {
        false
    }
    pub fn bmi2() -> bool {
        false
    }
    pub fn lzcnt() -> bool {
        false
    }
    pub fn popcnt() -> bool {
        false
    }
    pub fn movbe() -> bool {
        false
    }
    pub fn cx16() -> bool {
        false
    }
    pub fn sse42() -> bool {
        false
    }
    pub fn sse3() -> bool {
        false
    }
    pub fn ssse3() -> bool {
        false
    }
    pub fn sse41() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms_are_compared() {
        for c in [
            Code::Add_rm64_r64,
            Code::Div_rm8,
            Code::Movsb_m8_m8,
            Code::Jne_rel8_64,
            Code::Call_rel32_64,
            Code::Retnq,
            Code::Xlat_m8,
            Code::Enterq_imm16_imm8,
            Code::Mov_RAX_moffs64,
        ] {
            assert_eq!(skip_reason(c), None, "{c:?}");
        }
    }

    #[test]
    fn unsuitable_forms_are_skipped() {
        for c in [
            Code::Cpuid,
            Code::Rdtsc,
            Code::Pause,
            Code::Hlt,
            Code::Cli,
            Code::In_AL_imm8,
            Code::Pushad,
            Code::Mov_rm16_Sreg,
            Code::Jmp_rel16,
            Code::Retnw,
            Code::Int3,
        ] {
            assert!(skip_reason(c).is_some(), "{c:?}");
        }
    }
}
