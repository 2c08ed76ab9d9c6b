//! The executable-page runner: the only `unsafe` code of the testsuite.

use super::emit::{self, StateBlock};
use super::fx::FxImage;
use super::{gprs, regs_from_gprs, Exit, NativeError, Outcome, FLAGS_FIXED, LOADABLE_FLAGS, PAGE};
use core::cell::Cell;
use core::ptr;
use emu_core::Regs;
use std::io;
use std::sync::OnceLock;

/// The signals a guest instruction can raise.
const SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
];

/// The run in progress on this thread, for the signal handler.
#[derive(Clone, Copy)]
struct Active {
    code_lo: usize,
    code_hi: usize,
    state: *mut StateBlock,
    recover: usize,
}

const IDLE: Active = Active {
    code_lo: 0,
    code_hi: 0,
    state: ptr::null_mut(),
    recover: 0,
};

thread_local! {
    // Const-initialised and without a destructor, so reading it from a
    // signal handler does not allocate or register anything.
    static ACTIVE: Cell<Active> = const { Cell::new(IDLE) };
}

/// The handlers that were installed before ours, to chain to.
struct Previous([(libc::c_int, libc::sigaction); 5]);

static PREVIOUS: OnceLock<Result<Previous, String>> = OnceLock::new();

fn os_err(what: &'static str) -> NativeError {
    NativeError::Os(what, io::Error::last_os_error())
}

/// Runs one instruction on the host CPU; see the module documentation of
/// [`crate::native`].
pub struct NativeRunner {
    region: *mut u8,
    region_len: usize,
    code: *mut u8,
    mem: *mut u8,
    mem_len: usize,
    state: Box<StateBlock>,
    slot: Vec<u8>,
}

impl NativeRunner {
    /// Maps a runner whose data buffer has `mem_pages` pages.
    pub fn new(mem_pages: usize) -> Result<NativeRunner, NativeError> {
        install_handlers()?;
        ensure_altstack()?;
        let mem_len = mem_pages * PAGE;
        let region_len = mem_len + 3 * PAGE;
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing; no existing memory is affected.
        let region = unsafe {
            libc::mmap(
                ptr::null_mut(),
                region_len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            )
        };
        if region == libc::MAP_FAILED {
            return Err(os_err("mmap"));
        }
        let region = region.cast::<u8>();
        // SAFETY: `region` spans `region_len` = (mem_pages + 3) pages, so the
        // code page (index 1) and the data buffer (pages 2..) lie inside it.
        let (code, mem) = unsafe { (region.add(PAGE), region.add(2 * PAGE)) };
        let mut runner = NativeRunner {
            region,
            region_len,
            code,
            mem,
            mem_len,
            state: Box::default(),
            slot: Vec::new(),
        };
        runner.protect(mem, mem_len, libc::PROT_READ | libc::PROT_WRITE)?;
        let state_addr = ptr::addr_of_mut!(*runner.state) as u64;
        let page = emit::code_page(code as u64, state_addr, PAGE);
        runner.write_code(0, &page)?;
        Ok(runner)
    }

    fn protect(&self, at: *mut u8, len: usize, prot: libc::c_int) -> Result<(), NativeError> {
        // SAFETY: callers pass a page-aligned range inside `self.region`,
        // which this runner owns; no Rust reference points into it.
        let rc = unsafe { libc::mprotect(at.cast(), len, prot) };
        if rc != 0 {
            return Err(os_err("mprotect"));
        }
        Ok(())
    }

    /// Writes `bytes` at `off` in the code page (W^X: RW while writing, RX
    /// after).
    fn write_code(&mut self, off: usize, bytes: &[u8]) -> Result<(), NativeError> {
        assert!(off + bytes.len() <= PAGE);
        self.protect(self.code, PAGE, libc::PROT_READ | libc::PROT_WRITE)?;
        // SAFETY: the code page is writable now and `off + len <= PAGE`; the
        // source is a distinct Rust allocation.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.code.add(off), bytes.len()) };
        self.protect(self.code, PAGE, libc::PROT_READ | libc::PROT_EXEC)
    }

    /// Guest = host address of the data buffer (use as `FlatMem::base`).
    pub fn mem_base(&self) -> u64 {
        self.mem as u64
    }

    /// The data buffer.
    pub fn mem(&self) -> &[u8] {
        // SAFETY: `mem..mem+mem_len` is mapped RW for the runner's lifetime
        // and only written through `&mut self` or by `run(&mut self)`.
        unsafe { core::slice::from_raw_parts(self.mem, self.mem_len) }
    }

    /// The data buffer, for setting up a case.
    pub fn mem_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `mem`, and `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.mem, self.mem_len) }
    }

    /// Guest = host address where the instruction under test is placed.
    pub fn insn_addr(&self) -> u64 {
        self.code as u64 + emit::INSN_OFF as u64
    }

    /// The landing pad a taken branch must target.
    pub fn taken_target(&self) -> u64 {
        self.code as u64 + emit::PAD_OFF as u64
    }

    /// Runs `code` (one instruction, 64-bit mode) at [`Self::insn_addr`]
    /// with the GPRs and the loadable flags ([`LOADABLE_FLAGS`]) of `regs`;
    /// `regs.rip` is ignored. The data buffer is used and changed in place.
    /// The x87/MMX/SSE state is the FNINIT state (see [`FxImage::default`]).
    pub fn run(&mut self, code: &[u8], regs: &Regs) -> Result<Outcome, NativeError> {
        self.run_fp(code, regs, &FxImage::default())
    }

    /// [`Self::run`] with the x87/MMX/SSE state `fp` loaded by FXRSTOR64.
    /// Its MXCSR must not set bits the host's MXCSR_MASK lacks (FXRSTOR
    /// would fault in the prologue).
    pub fn run_fp(
        &mut self,
        code: &[u8],
        regs: &Regs,
        fp: &FxImage,
    ) -> Result<Outcome, NativeError> {
        let slot =
            emit::insn_slot(self.code as u64, code).ok_or(NativeError::CodeTooLong(code.len()))?;
        if slot != self.slot {
            self.write_code(emit::INSN_OFF, &slot)?;
            self.slot = slot;
        }
        *self.state = StateBlock {
            gpr: gprs(regs),
            rflags: (regs.rflags & LOADABLE_FLAGS) | FLAGS_FIXED,
            fx_in: fp.clone(),
            ..StateBlock::default()
        };
        let state: *mut StateBlock = &mut *self.state;
        ACTIVE.with(|a| {
            a.set(Active {
                code_lo: self.code as usize,
                code_hi: self.code as usize + PAGE,
                state,
                recover: self.code as usize + emit::RECOVER_OFF,
            })
        });
        // SAFETY: the code page starts with the prologue built by
        // `emit::code_page`, which follows the sysv64 convention for a
        // function taking one pointer: it saves and restores RBX, RBP,
        // R12-R15 and RSP, leaves DF clear and returns with RET. Between
        // prologue and epilogue it runs the guest instruction on guest
        // registers; its memory accesses are confined by the generator to the
        // data buffer (and guest stack inside it), and any fault is turned by
        // `on_signal` into a jump to the recovery stub, which also restores
        // the host. `state` points to the live, boxed state block whose
        // address the stubs embed.
        unsafe {
            let entry: extern "sysv64" fn(*mut StateBlock) = core::mem::transmute(self.code);
            entry(state);
        }
        ACTIVE.with(|a| a.set(IDLE));
        let s = &*self.state;
        let insn = self.insn_addr();
        let (exit, rip) = match s.exit {
            emit::EXIT_FALLTHROUGH => (Exit::FallThrough, insn + code.len() as u64),
            emit::EXIT_TAKEN => (Exit::Taken, self.taken_target()),
            emit::EXIT_FAULT => {
                let exit = Exit::Fault {
                    signal: s.signal as i32,
                    rip: s.fault_rip,
                    addr: s.fault_addr,
                };
                (exit, s.fault_rip)
            }
            other => panic!("native runner: bad exit code {other}"),
        };
        Ok(Outcome {
            regs: regs_from_gprs(&s.gpr, rip, s.rflags),
            exit,
            fp: s.fx_out.clone(),
        })
    }
}

impl Drop for NativeRunner {
    fn drop(&mut self) {
        // SAFETY: `region` was returned by mmap with `region_len` and nothing
        // borrows it any more (`mem()` borrows end with `&self`).
        unsafe { libc::munmap(self.region.cast(), self.region_len) };
    }
}

/// Installs `on_signal` for [`SIGNALS`] once per process.
fn install_handlers() -> Result<(), NativeError> {
    let r = PREVIOUS.get_or_init(|| {
        let mut prev = [(0, empty_sigaction()); 5];
        for (i, sig) in SIGNALS.iter().enumerate() {
            let mut act = empty_sigaction();
            act.sa_sigaction = on_signal as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `act.sa_mask` is a valid sigset_t owned by this frame.
            unsafe { libc::sigemptyset(&mut act.sa_mask) };
            let mut old = empty_sigaction();
            // SAFETY: both pointers refer to live sigaction structs; the
            // handler is a valid `extern "C"` function for SA_SIGINFO.
            if unsafe { libc::sigaction(*sig, &act, &mut old) } != 0 {
                return Err(format!("sigaction({sig}): {}", io::Error::last_os_error()));
            }
            prev[i] = (*sig, old);
        }
        Ok(Previous(prev))
    });
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(NativeError::Os("sigaction", io::Error::other(e.clone()))),
    }
}

fn empty_sigaction() -> libc::sigaction {
    // SAFETY: sigaction is a plain C struct for which all-zero bytes are a
    // valid value (SIG_DFL, empty mask, no flags).
    unsafe { core::mem::zeroed() }
}

/// Makes sure this thread has an alternate signal stack, because the guest
/// RSP may point anywhere when a fault is delivered.
fn ensure_altstack() -> Result<(), NativeError> {
    // SAFETY: all-zero is a valid stack_t.
    let mut cur: libc::stack_t = unsafe { core::mem::zeroed() };
    // SAFETY: querying only; `cur` is a live stack_t.
    if unsafe { libc::sigaltstack(ptr::null(), &mut cur) } != 0 {
        return Err(os_err("sigaltstack"));
    }
    if cur.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(());
    }
    const SIZE: usize = 256 * 1024;
    // SAFETY: a fresh anonymous mapping. It is deliberately leaked: it stays
    // the thread's signal stack until the thread exits.
    let stack = unsafe {
        libc::mmap(
            ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(os_err("mmap(sigaltstack)"));
    }
    let ss = libc::stack_t {
        ss_sp: stack,
        ss_flags: 0,
        ss_size: SIZE,
    };
    // SAFETY: `ss` describes the mapping made above, which is never unmapped.
    if unsafe { libc::sigaltstack(&ss, ptr::null_mut()) } != 0 {
        return Err(os_err("sigaltstack"));
    }
    Ok(())
}

/// Redirects a fault in the active code page to the recovery stub; passes
/// any other signal to the previous handler.
extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let active = ACTIVE.with(|a| a.get());
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: with SA_SIGINFO the kernel passes a valid ucontext_t as `ctx`.
    let gregs = unsafe { &mut (*uc).uc_mcontext.gregs };
    let rip = gregs[libc::REG_RIP as usize] as usize;
    if !active.state.is_null() && (active.code_lo..active.code_hi).contains(&rip) {
        // SAFETY: `active.state` is the state block of the run in progress on
        // this thread (set just before entering the code page, cleared
        // after); the interrupted code does not touch it concurrently.
        let s = unsafe { &mut *active.state };
        let g = |r: libc::c_int| gregs[r as usize] as u64;
        s.gpr = [
            g(libc::REG_RAX),
            g(libc::REG_RCX),
            g(libc::REG_RDX),
            g(libc::REG_RBX),
            g(libc::REG_RSP),
            g(libc::REG_RBP),
            g(libc::REG_RSI),
            g(libc::REG_RDI),
            g(libc::REG_R8),
            g(libc::REG_R9),
            g(libc::REG_R10),
            g(libc::REG_R11),
            g(libc::REG_R12),
            g(libc::REG_R13),
            g(libc::REG_R14),
            g(libc::REG_R15),
        ];
        s.rflags = g(libc::REG_EFL);
        s.signal = sig as u64;
        s.fault_rip = rip as u64;
        // SAFETY: `info` is the kernel's valid siginfo_t for this signal.
        s.fault_addr = unsafe { (*info).si_addr() } as u64;
        s.exit = emit::EXIT_FAULT;
        gregs[libc::REG_RIP as usize] = active.recover as i64;
        return;
    }
    chain(sig, info, ctx);
}

/// Hands a signal that is not ours to whoever handled it before.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = match PREVIOUS.get() {
        Some(Ok(p)) => p.0.iter().find(|(s, _)| *s == sig).map(|(_, a)| *a),
        _ => None,
    };
    let act = prev.unwrap_or_else(empty_sigaction);
    match act.sa_sigaction {
        libc::SIG_DFL | libc::SIG_IGN => {
            // Restore the default action; returning re-executes the faulting
            // instruction, which then terminates the process as it would have
            // without us.
            let dfl = empty_sigaction();
            // SAFETY: installs SIG_DFL for `sig`; `dfl` is a live struct.
            unsafe { libc::sigaction(sig, &dfl, ptr::null_mut()) };
        }
        h if act.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: the previous handler was registered with SA_SIGINFO, so
            // it has this signature; we pass the kernel's own arguments.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { core::mem::transmute(h) };
            f(sig, info, ctx);
        }
        h => {
            // SAFETY: a handler registered without SA_SIGINFO takes the
            // signal number only.
            let f: extern "C" fn(libc::c_int) = unsafe { core::mem::transmute(h) };
            f(sig);
        }
    }
}
