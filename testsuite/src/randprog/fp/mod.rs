//! Random SSE and x87 programs for the KVM comparison, run in ring 3.
//!
//! The kernel part sets CR0.NE and CR0.MP, clears CR0.EM and CR0.TS, sets
//! CR4.OSFXSR and CR4.OSXMMEXCPT, then enters ring 3, where everything
//! floating-point happens (on the nested /dev/kvm of CI machines ring 3
//! runs natively on the host CPU): FXRSTOR64 loads a random state (every
//! rounding mode, precision, DAZ and FTZ, all exceptions masked), then a
//! random sequence of the MMX/SSE or x87 forms emu-core implements runs on
//! registers and on a buffer of floats, integers and special values.
//! Undefined x87 condition codes are cleared after each instruction that
//! leaves them so (FNSTENV, AND, FLDENV), so nothing undefined flows on. At
//! the end FXSAVE64 stores the state; the kernel prints FCW, FSW, the tags,
//! MXCSR, every ST(i) and XMM register, the general registers and a
//! checksum of the buffer.
//!
//! Left out, with the reasons [`fp_exclusions`] gives: approximations that
//! differ between implementations (transcendentals; RCP/RSQRT across
//! vendors), forms that store the last-instruction pointers (vendors
//! update and store them differently), and whole-state loads (their
//! images are the host differential test's).

mod forms;
mod step;

pub use forms::{fp_candidates, fp_exclusions, fp_forms, ready, FpKind, FpOptions};

use super::alu::{fold_buffer, show_trace, stash_pool, BUF, BUF_LEN, POOL, TRACE, TRACE_MAX};
use crate::gen::fp::check::fsw_undefined;
use crate::gen::fp::{state, unit, values, Unit};
use crate::gen::Rng;
use crate::guest;
use crate::kvm::kit::{Kit, Stash};
use forms::{depth_after, START_DEPTH};
use iced_x86::code_asm::*;
use iced_x86::{Code, Instruction, Register};
use step::{build, offset};

/// The FXSAVE image FXRSTOR64 loads first.
const FX_INIT: u64 = guest::DATA + 0x4_1000;
/// Where FXSAVE64 stores the final state.
const FX_DUMP: u64 = guest::DATA + 0x4_1200;
/// The x87 environment used to clear undefined condition codes.
const ENV: u64 = guest::DATA + 0x4_1400;
/// FXSAVE64 area of the per-step digest when tracing.
const FX_TRACE: u64 = guest::DATA + 0x4_1600;
/// The initial state: random, with every exception masked and none
/// pending; x87 programs start with [`START_DEPTH`] values on the stack.
fn initial_state(rng: &mut Rng, kind: FpKind) -> Vec<u8> {
    let code = match kind {
        FpKind::Sse => Code::Addps_xmm_xmmm128,
        FpKind::X87 => Code::Fadd_m64fp,
    };
    let mut fx = state::random_state(rng, code);
    fx.set_fcw(fx.fcw() | 0x3f);
    fx.set_fsw(fx.fsw() & !((1 << 7) | (1 << 15)));
    fx.set_mxcsr(fx.mxcsr() | (0x3f << 7));
    if kind == FpKind::X87 {
        let top = fx.top();
        let tags = (0..START_DEPTH).fold(0u8, |t, i| t | 1 << ((top + i as usize) & 7));
        fx.set_ftw(tags);
    }
    fx.0.to_vec()
}

/// Code that clears the condition codes `mask` of FSW (RFLAGS kept: FCMOVcc
/// may read what an earlier FCOMI left).
fn clear_condition_codes(a: &mut CodeAssembler, mask: u16) -> Result<(), IcedError> {
    a.pushfq()?;
    a.fnstenv(ptr(ENV))?;
    a.and(word_ptr(ENV + 4), i32::from(!mask))?;
    a.fldenv(ptr(ENV))?;
    a.popfq()
}

/// Folds the compared parts of an FXSAVE64 image at `at` into R15
/// (FCW, FSW, tags, MXCSR, ST(i), XMM; not the pointers).
fn fold_image(a: &mut CodeAssembler, at: u64) -> Result<(), IcedError> {
    // The low five bytes: FCW, FSW, tags.
    a.mov(r12, qword_ptr(at))?;
    a.shl(r12, 24)?;
    a.shr(r12, 24)?;
    a.xor(r15, r12)?;
    a.rol(r15, 3)?;
    a.mov(r12d, dword_ptr(at + 24))?;
    a.xor(r15, r12)?;
    for i in 0..8 {
        a.rol(r15, 5)?;
        a.xor(r15, qword_ptr(at + 32 + 16 * i))?;
        a.movzx(r12d, word_ptr(at + 40 + 16 * i))?;
        a.xor(r15, r12)?;
    }
    for i in 0..32 {
        a.rol(r15, 7)?;
        a.xor(r15, qword_ptr(at + 160 + 8 * i))?;
    }
    Ok(())
}

/// A random SSE or x87 program (see the module documentation) drawing from
/// [`fp_forms`], and its listing, one line per step.
pub fn fp_program(
    seed: u64,
    opts: &FpOptions,
    same_vendor: bool,
) -> Result<(Vec<u8>, Vec<String>), IcedError> {
    fp_program_from(&fp_forms(opts.kind, same_vendor), seed, opts)
}

/// [`fp_program`] drawing from `forms`.
pub fn fp_program_from(
    forms: &[Code],
    seed: u64,
    opts: &FpOptions,
) -> Result<(Vec<u8>, Vec<String>), IcedError> {
    assert!(!forms.is_empty(), "no {:?} forms to draw", opts.kind);
    // x87 programs: now and then an MMX form (register aliasing, the MMX
    // transition), followed as in real code by EMMS and loads that refill
    // the stack; the rest x87.
    let (x87, mmx): (Vec<Code>, Vec<Code>) = forms.iter().partition(|c| unit(**c) == Unit::X87);
    let emms = forms.contains(&Code::Emms);
    let reload = forms.contains(&Code::Fld_m64fp);
    let mut rng = Rng::new(seed ^ 0xf10a_7000_0000_0000);
    let mut listing = Vec::new();
    let image = guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        // CR0: NE and MP set, EM and TS clear; CR4: OSFXSR, OSXMMEXCPT.
        a.mov(rax, cr0)?;
        a.or(rax, 0x22)?;
        a.and(rax, !0xci32)?;
        a.mov(cr0, rax)?;
        a.mov(rax, cr4)?;
        a.or(rax, 0x600)?;
        a.mov(cr4, rax)?;
        let mut st = Stash::default();
        let init = initial_state(&mut rng, opts.kind);
        k.user(a, |a| {
            a.mov(r14, BUF)?;
            for i in 0..u64::from(BUF_LEN / 16) {
                let e = rng.pick(&[
                    values::Elem::F32,
                    values::Elem::F64,
                    values::Elem::F80,
                    values::Elem::Int(2),
                    values::Elem::Int(4),
                    values::Elem::Int(8),
                ]);
                let mut b = [0u8; 16];
                values::fill(&mut rng, e, &mut b);
                for (j, q) in b.chunks(8).enumerate() {
                    let v = u64::from_le_bytes(q.try_into().expect("8 bytes"));
                    a.mov(rax, v)?;
                    a.mov(qword_ptr(r14 + (i * 16 + 8 * j as u64)), rax)?;
                }
            }
            for (i, q) in init.chunks(8).enumerate() {
                let v = u64::from_le_bytes(q.try_into().expect("8 bytes"));
                a.mov(rax, v)?;
                a.mov(qword_ptr(FX_INIT + 8 * i as u64), rax)?;
            }
            a.fxrstor64(ptr(FX_INIT))?;
            for r in POOL {
                a.add_instruction(Instruction::with2(
                    Code::Mov_r64_imm64,
                    r,
                    rng.reg_value(64),
                )?)?;
            }
            a.xor(r15, r15)?;
            a.push(rng.below(0x1000) as i32 & 0x8d5)?;
            a.popfq()?;
            let mut step = 0;
            let mut depth = START_DEPTH;
            while step < opts.steps.min(TRACE_MAX) {
                let only_x87 = mmx.is_empty() || !emms || rng.chance(95);
                let code = match opts.kind {
                    FpKind::X87 if !x87.is_empty() && only_x87 => rng.pick(&x87),
                    _ => rng.pick(forms),
                };
                let after = depth_after(code, depth);
                if opts.kind == FpKind::X87 {
                    let overflow = depth >= 7 && after > depth;
                    let underflow = depth <= 1 && after < depth;
                    if (overflow || underflow) && rng.chance(90) {
                        continue;
                    }
                }
                let Some(s) = build(code, &mut rng, depth) else {
                    continue;
                };
                depth = after;
                for p in &s.pre {
                    a.add_instruction(*p)?;
                }
                a.add_instruction(s.ins)?;
                let undefined = fsw_undefined(code);
                if undefined != 0 {
                    clear_condition_codes(a, undefined)?;
                }
                listing.push(format!("{step}: {}", crate::gen::format_instr(&s.ins)));
                if opts.kind == FpKind::X87 && unit(code) == Unit::Mmx && code != Code::Emms {
                    a.emms()?;
                    depth = 0;
                    while reload && depth < START_DEPTH {
                        let off = offset(&mut rng, 8);
                        a.fld(qword_ptr(r14 + off))?;
                        depth += 1;
                    }
                }
                if opts.trace {
                    a.fxsave64(ptr(FX_TRACE))?;
                    fold_image(a, FX_TRACE)?;
                    for r in POOL {
                        a.rol(r15, 1)?;
                        a.add_instruction(Instruction::with2(
                            Code::Xor_r64_rm64,
                            Register::R15,
                            r,
                        )?)?;
                    }
                    a.mov(qword_ptr(TRACE + 8 * step as u64), r15)?;
                }
                step += 1;
            }
            a.fxsave64(ptr(FX_DUMP))?;
            stash_pool(a, &mut st)?;
            // The compared parts of the final state: FCW, FSW and the tags
            // (not FOP), MXCSR (not MXCSR_MASK, a model property), the
            // ST(i) without their reserved bytes, the XMM registers.
            a.mov(rax, qword_ptr(FX_DUMP))?;
            a.mov(rcx, 0xff_ffff_ffffu64)?;
            a.and(rax, rcx)?;
            st.put(a, "fcw.fsw.ftw", rax)?;
            a.mov(eax, dword_ptr(FX_DUMP + 24))?;
            st.put(a, "mxcsr", rax)?;
            for i in 0..8u64 {
                st.mem(a, &format!("st{i}.m"), FX_DUMP + 32 + 16 * i)?;
                a.movzx(eax, word_ptr(FX_DUMP + 40 + 16 * i))?;
                st.put(a, &format!("st{i}.se"), rax)?;
            }
            for i in 0..16u64 {
                st.mem(a, &format!("xmm{i}.lo"), FX_DUMP + 160 + 16 * i)?;
                st.mem(a, &format!("xmm{i}.hi"), FX_DUMP + 168 + 16 * i)?;
            }
            a.xor(r15, r15)?;
            fold_buffer(a)?;
            st.put(a, "buffer", r15)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        if opts.trace {
            show_trace(a, &k, listing.len())?;
        }
        guest::exit(a, 0)
    })?;
    Ok((image, listing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_assemble_from_every_candidate() {
        for kind in [FpKind::Sse, FpKind::X87] {
            let forms = fp_candidates(kind, false);
            assert!(forms.len() > 150, "{kind:?}: {} forms", forms.len());
            let opts = FpOptions {
                kind,
                steps: 400,
                trace: true,
            };
            let (a, listing) = fp_program_from(&forms, 5, &opts).unwrap();
            assert_eq!(listing.len(), 400);
            let (b, _) = fp_program_from(&forms, 5, &opts).unwrap();
            assert_eq!(a, b, "reproducible");
        }
    }
}
