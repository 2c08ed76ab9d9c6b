//! Run one x86-64 instruction on the host CPU.
//!
//! [`NativeRunner`] owns a small region of host memory below 2 GiB
//! (`MAP_32BIT`), laid out as
//!
//! ```text
//! [guard][code page][data buffer ...][guard]
//! ```
//!
//! The code page holds a prologue that saves the host's callee-saved
//! registers and RSP and loads the 16 guest GPRs and RFLAGS, the instruction
//! under test at [`NativeRunner::insn_addr`], and epilogues that store the
//! guest state back and return to Rust. Guest and host addresses coincide:
//! the guest RIP *is* the host address of the instruction and guest memory
//! addresses *are* host addresses inside the data buffer, so RIP-relative
//! operands, CALL's pushed return address and indirect branch targets mean
//! the same thing natively and in the emulator.
//!
//! Branches: a taken branch must target [`NativeRunner::taken_target`] (a
//! landing pad 32 bytes before the instruction, reachable with rel8) or the
//! fall-through address; the resulting RIP is reported in guest
//! coordinates. Anything else is a test-generator bug and shows up as a
//! fault (the rest of the page is filled with INT3).
//!
//! Faults: the runner installs SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGTRAP handlers
//! (on the thread's alternate signal stack, since guest RSP is arbitrary).
//! A fault whose RIP lies in the runner's code page resumes at a recovery
//! stub that restores the host and reports [`Exit::Fault`]; any other fault
//! is passed to the previously installed handler. So #DE from DIV, #GP from
//! a misaligned CMPXCHG16B etc. are observable results, not crashes.
//!
//! Floating point: the x87/MMX/SSE state is loaded from an FXSAVE image
//! ([`fx::FxImage`]) before the instruction and stored after it (also at a
//! fault); the host's own state is saved and restored around the run.
//!
//! On a host that is not x86-64 Linux, [`NativeRunner::new`] returns
//! [`NativeError::Unsupported`].

use emu_core::Regs;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod emit;
pub mod fx;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod harness;
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod stub;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub use harness::NativeRunner;
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub use stub::NativeRunner;

/// CF, PF, AF, ZF, SF, OF.
pub const ARITH_FLAGS: u64 = 0x8d5;
/// DF.
pub const DF: u64 = 1 << 10;
/// IF: always set in user mode, so set in the emulator's input too.
pub const IF: u64 = 1 << 9;
/// RFLAGS bit 1 reads as 1.
pub const FLAGS_FIXED: u64 = 1 << 1;
/// The RFLAGS bits the runner loads from the input state; everything else
/// (TF, AC, ID, ...) is kept at the host's user-mode value.
pub const LOADABLE_FLAGS: u64 = ARITH_FLAGS | DF;

/// Size of the code page, and the granule of the data buffer.
pub const PAGE: usize = 4096;

/// Why the native runner cannot be used.
#[derive(Debug)]
pub enum NativeError {
    /// The host cannot run x86-64 code natively (the reason is the text).
    Unsupported(&'static str),
    /// mmap/mprotect/sigaction failed.
    Os(&'static str, std::io::Error),
    /// The instruction does not fit the slot reserved for it.
    CodeTooLong(usize),
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NativeError::Unsupported(why) => write!(f, "native runner unsupported: {why}"),
            NativeError::Os(what, e) => write!(f, "{what}: {e}"),
            NativeError::CodeTooLong(n) => write!(f, "instruction of {n} bytes is too long"),
        }
    }
}

impl std::error::Error for NativeError {}

/// How the instruction left the code page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Execution continued at the next instruction.
    FallThrough,
    /// Execution continued at [`NativeRunner::taken_target`].
    Taken,
    /// The CPU raised an exception, delivered as `signal`.
    Fault {
        /// The signal number (SIGFPE, SIGSEGV, ...).
        signal: i32,
        /// Guest RIP of the faulting instruction.
        rip: u64,
        /// `si_addr` of the signal.
        addr: u64,
    },
}

impl Exit {
    /// The exception vectors a fault may correspond to (Linux maps several
    /// vectors onto SIGSEGV/SIGBUS, so this is a set).
    pub fn vectors(&self) -> &'static [u8] {
        match *self {
            Exit::Fault { signal, .. } => signal_vectors(signal),
            _ => &[],
        }
    }
}

/// Exception vectors the kernel reports as `signal` (Linux numbering).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn signal_vectors(signal: i32) -> &'static [u8] {
    match signal {
        libc::SIGFPE => &[0, 16, 19],
        libc::SIGTRAP => &[1, 3],
        libc::SIGILL => &[6],
        libc::SIGBUS => &[12, 17],
        libc::SIGSEGV => &[10, 11, 12, 13, 14],
        _ => &[],
    }
}

/// No signals on hosts without the native runner.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub fn signal_vectors(_signal: i32) -> &'static [u8] {
    &[]
}

/// The state after running one instruction natively.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// GPRs and RFLAGS after the instruction; `rip` in guest coordinates.
    /// After a fault, the registers are the input registers (faults are
    /// precise) with `rip` at the instruction.
    pub regs: Regs,
    pub exit: Exit,
    /// The x87/MMX/SSE state after the instruction, or at its fault.
    pub fp: fx::FxImage,
}

/// The 16 GPRs in encoding order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
/// R8..R15).
pub fn gprs(r: &Regs) -> [u64; 16] {
    [
        r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15,
    ]
}

/// Mutable access to GPR number `n` (encoding order, 0..16).
pub fn gpr_mut(r: &mut Regs, n: usize) -> &mut u64 {
    match n {
        0 => &mut r.rax,
        1 => &mut r.rcx,
        2 => &mut r.rdx,
        3 => &mut r.rbx,
        4 => &mut r.rsp,
        5 => &mut r.rbp,
        6 => &mut r.rsi,
        7 => &mut r.rdi,
        8 => &mut r.r8,
        9 => &mut r.r9,
        10 => &mut r.r10,
        11 => &mut r.r11,
        12 => &mut r.r12,
        13 => &mut r.r13,
        14 => &mut r.r14,
        15 => &mut r.r15,
        _ => panic!("GPR number {n} out of range"),
    }
}

/// Builds [`Regs`] from GPRs in encoding order.
pub fn regs_from_gprs(g: &[u64; 16], rip: u64, rflags: u64) -> Regs {
    let mut r = Regs {
        rip,
        rflags,
        ..Regs::default()
    };
    for (n, v) in g.iter().enumerate() {
        *gpr_mut(&mut r, n) = *v;
    }
    r
}

/// Names of the GPRs in encoding order.
pub const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpr_order_roundtrips() {
        let g: [u64; 16] = core::array::from_fn(|i| i as u64 * 0x1111);
        let r = regs_from_gprs(&g, 5, 2);
        assert_eq!(gprs(&r), g);
        assert_eq!(r.rsp, 4 * 0x1111);
        assert_eq!(r.rdi, 7 * 0x1111);
    }
}

#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
mod host_tests {
    use super::*;

    fn runner() -> NativeRunner {
        NativeRunner::new(1).expect("native runner")
    }

    fn regs() -> Regs {
        Regs {
            rflags: FLAGS_FIXED,
            ..Regs::default()
        }
    }

    #[test]
    fn add_sets_carry_and_overflow() {
        let mut r = runner();
        let mut i = regs();
        // add rax, rbx
        i.rax = 0x7fff_ffff_ffff_ffff;
        i.rbx = 1;
        i.rcx = 0x1234;
        i.r15 = 0xfeed;
        let o = r.run(&[0x48, 0x01, 0xd8], &i).unwrap();
        assert_eq!(o.exit, Exit::FallThrough);
        assert_eq!(o.regs.rax, 0x8000_0000_0000_0000);
        assert_eq!(o.regs.rcx, 0x1234);
        assert_eq!(o.regs.r15, 0xfeed);
        assert_eq!(o.regs.rip, r.insn_addr() + 3);
        // OF=1 SF=1 CF=0 ZF=0 AF=1 (0xf + 1) PF=1 (low byte 0)
        assert_eq!(o.regs.rflags & ARITH_FLAGS, 0x800 | 0x80 | 0x10 | 0x4);
        i.rax = u64::MAX;
        let o = r.run(&[0x48, 0x01, 0xd8], &i).unwrap();
        assert_eq!(o.regs.rax, 0);
        assert_eq!(o.regs.rflags & ARITH_FLAGS, 0x1 | 0x40 | 0x10 | 0x4);
    }

    #[test]
    fn flags_and_df_are_loaded_and_stored() {
        let mut r = runner();
        let mut i = regs();
        i.rflags = ARITH_FLAGS | DF | (1 << 8) | (1 << 18) | FLAGS_FIXED; // TF, AC ignored
        let o = r.run(&[0x90], &i).unwrap();
        assert_eq!(o.regs.rflags & (ARITH_FLAGS | DF), ARITH_FLAGS | DF);
        assert_eq!(o.regs.rflags & ((1 << 8) | (1 << 18)), 0);
        // cmc
        let o = r.run(&[0xf5], &i).unwrap();
        assert_eq!(o.regs.rflags & ARITH_FLAGS, ARITH_FLAGS & !1);
    }

    #[test]
    fn stack_lives_in_the_buffer() {
        let mut r = runner();
        let mut i = regs();
        i.rsp = r.mem_base() + 0x800;
        i.rax = 0x1122_3344_5566_7788;
        r.mem_mut().fill(0);
        let o = r.run(&[0x50], &i).unwrap(); // push rax
        assert_eq!(o.regs.rsp, i.rsp - 8);
        assert_eq!(
            &r.mem()[0x7f8..0x800],
            &0x1122_3344_5566_7788u64.to_le_bytes()
        );
        i.rsp -= 8;
        let o = r.run(&[0x5b], &i).unwrap(); // pop rbx
        assert_eq!(o.regs.rbx, 0x1122_3344_5566_7788);
        assert_eq!(o.regs.rsp, i.rsp + 8);
    }

    #[test]
    fn branches_report_guest_rip() {
        let mut r = runner();
        let mut i = regs();
        let insn = r.insn_addr();
        let pad = r.taken_target();
        let rel = (pad as i64 - (insn as i64 + 2)) as i8;
        // jz rel8, ZF clear then set
        let code = [0x74, rel as u8];
        let o = r.run(&code, &i).unwrap();
        assert_eq!((o.exit, o.regs.rip), (Exit::FallThrough, insn + 2));
        i.rflags |= 0x40;
        let o = r.run(&code, &i).unwrap();
        assert_eq!((o.exit, o.regs.rip), (Exit::Taken, pad));
        // call rel32 pushes the guest return address
        i.rsp = r.mem_base() + 0x100;
        let rel = (pad as i64 - (insn as i64 + 5)) as i32;
        let mut code = vec![0xe8];
        code.extend_from_slice(&rel.to_le_bytes());
        let o = r.run(&code, &i).unwrap();
        assert_eq!((o.exit, o.regs.rip), (Exit::Taken, pad));
        assert_eq!(&r.mem()[0xf8..0x100], &(insn + 5).to_le_bytes());
        // ret to the pad
        i.rsp = r.mem_base() + 0xf8;
        r.mem_mut()[0xf8..0x100].copy_from_slice(&pad.to_le_bytes());
        let o = r.run(&[0xc3], &i).unwrap();
        assert_eq!(
            (o.exit, o.regs.rip, o.regs.rsp),
            (Exit::Taken, pad, i.rsp + 8)
        );
    }

    #[test]
    fn faults_are_reported_not_fatal() {
        let mut r = runner();
        let mut i = regs();
        i.rax = 5;
        i.rcx = 0;
        i.rsp = 8; // garbage guest stack: delivery must use the alt stack
        let o = r.run(&[0x48, 0xf7, 0xf1], &i).unwrap(); // div rcx
        assert!(matches!(
            o.exit,
            Exit::Fault {
                signal: libc::SIGFPE,
                ..
            }
        ));
        assert_eq!(o.exit.vectors(), &[0, 16, 19]);
        assert_eq!(o.regs.rip, r.insn_addr());
        assert_eq!(o.regs.rax, 5);
        // mov rax, [rcx] with rcx = 0
        let o = r.run(&[0x48, 0x8b, 0x01], &i).unwrap();
        assert!(matches!(
            o.exit,
            Exit::Fault {
                signal: libc::SIGSEGV,
                addr: 0,
                ..
            }
        ));
        // ud2
        let o = r.run(&[0x0f, 0x0b], &i).unwrap();
        assert!(matches!(
            o.exit,
            Exit::Fault {
                signal: libc::SIGILL,
                ..
            }
        ));
        // the runner still works afterwards
        i.rax = 1;
        let o = r.run(&[0x48, 0xff, 0xc0], &i).unwrap(); // inc rax
        assert_eq!((o.exit, o.regs.rax), (Exit::FallThrough, 2));
    }

    #[test]
    fn floating_point_state_is_loaded_and_stored() {
        let mut r = runner();
        let i = regs();
        let mut fp = fx::FxImage::default();
        let one = 1.0f32.to_bits() as u128;
        let two = 2.5f32.to_bits() as u128;
        fp.set_xmm(1, one | (one << 32));
        fp.set_xmm(9, two | (two << 96));
        fp.set_mxcsr(0x1f80 | (3 << 13)); // round toward zero
                                          // addps xmm1, xmm9
        let o = r.run_fp(&[0x41, 0x0f, 0x58, 0xc9], &i, &fp).unwrap();
        assert_eq!(o.exit, Exit::FallThrough);
        let want = 3.5f32.to_bits() as u128 | (one << 32) | (two << 96);
        assert_eq!(o.fp.xmm(1), want);
        assert_eq!(o.fp.xmm(9), fp.xmm(9));
        assert_eq!(o.fp.mxcsr(), 0x1f80 | (3 << 13));
        // fld1 with TOP = 0 pushes into R7
        let o = r.run_fp(&[0xd9, 0xe8], &i, &fp).unwrap();
        assert_eq!(o.fp.top(), 7);
        assert_eq!(o.fp.ftw(), 0x80);
        assert_eq!(o.fp.st_parts(0), (0x3fff, 1 << 63));
        // paddb mm3, mm3: the MMX transition tags every register valid
        let o = r.run_fp(&[0x0f, 0xfc, 0xdb], &i, &o.fp).unwrap();
        assert_eq!((o.fp.top(), o.fp.ftw()), (0, 0xff));
        assert_eq!(o.fp.phys_parts(3).0, 0xffff);
    }

    #[test]
    fn unmasked_simd_exceptions_fault_with_their_flags() {
        let mut r = runner();
        let i = regs();
        let mut fp = fx::FxImage::default();
        fp.set_mxcsr(0x1f80 & !(1 << 9)); // unmask divide-by-zero
        fp.set_xmm(0, 1.0f32.to_bits() as u128);
        // divss xmm0, xmm1 (xmm1 = 0)
        let o = r.run_fp(&[0xf3, 0x0f, 0x5e, 0xc1], &i, &fp).unwrap();
        assert!(matches!(
            o.exit,
            Exit::Fault {
                signal: libc::SIGFPE,
                ..
            }
        ));
        assert_eq!(o.fp.mxcsr(), (0x1f80 & !(1 << 9)) | 4, "ZE set");
        assert_eq!(o.fp.xmm(0), 1.0f32.to_bits() as u128, "destination kept");
        // The host's own state was restored: this still computes normally.
        let x = std::hint::black_box(1.0f64) / std::hint::black_box(3.0f64);
        assert_eq!(x, 1.0 / 3.0);
    }

    #[test]
    fn buffer_is_below_2gib() {
        let r = runner();
        assert!(r.mem_base() + PAGE as u64 <= 1 << 31);
        assert!(r.insn_addr() < r.mem_base());
        assert_eq!(r.mem().len(), PAGE);
    }
}
