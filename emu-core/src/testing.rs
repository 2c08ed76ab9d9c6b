//! Single-instruction execution for differential tests: one instruction in
//! 64-bit mode over a flat memory window, compared elsewhere against the
//! host CPU.
//!
//! The vCPU is put in 64-bit mode with paging off. Real hardware cannot be
//! in that state; softvm's MMU simply maps linear = physical, which lets a
//! test place guest data at the very addresses the host buffer has.
//!
//! The floating-point control bits are those an operating system such as
//! Linux gives its user programs: CR0.NE and CR0.MP set, CR0.EM and CR0.TS
//! clear, CR4.OSFXSR set, and CR4.OSXMMEXCPT set unless the caller asks
//! for the #UD a guest without it gets (see [`step64_fp`]).

use crate::api_types::{Fpu, Regs, Segment, Sregs};
use crate::cpu::state::{
    CR0_ET, CR0_MP, CR0_NE, CR0_PE, CR4_OSFXSR, CR4_OSXMMEXCPT, CR4_PAE, EFER_LMA, EFER_LME,
};
use crate::exec::{step, Exec, Signals, StepResult};
use crate::system::SysState;
use iced_x86::{Code, CpuidFeature, Instruction};
use softmmu::{Backing, Gpa, GuestMemory, MemFlags, Mmu, PAGE_SIZE};

/// A flat guest memory window: guest address `base` maps to `bytes[0]`.
pub struct FlatMem {
    pub base: u64,
    pub bytes: Vec<u8>,
}

/// Why [`step64`] did not complete the instruction.
#[derive(Debug, PartialEq, Eq)]
pub enum StepError {
    /// Architectural exception (vector, error code).
    Exception { vector: u8, error_code: Option<u32> },
    /// The instruction is not implemented.
    Unimplemented(String),
    /// The instruction wanted port or MMIO I/O, or the setup failed.
    Other(String),
}

/// Execute exactly one instruction at `regs.rip` (bytes `code`) in 64-bit
/// mode, CPL 0, over `mem`, with the x87/SSE state after FNINIT.
pub fn step64(regs: &mut Regs, code: &[u8], mem: &mut FlatMem) -> Result<(), StepError> {
    step64_fp(regs, &mut Fpu::default(), true, code, mem)
}

/// [`step64`] with the x87/MMX/SSE state `fpu`, which is updated also
/// when the instruction faults (an unmasked SIMD exception sets its MXCSR
/// flag before #XM). `osxmmexcpt` is CR4.OSXMMEXCPT: without it an
/// unmasked SIMD exception is #UD.
pub fn step64_fp(
    regs: &mut Regs,
    fpu: &mut Fpu,
    osxmmexcpt: bool,
    code: &[u8],
    mem: &mut FlatMem,
) -> Result<(), StepError> {
    let cr4 = CR4_OSFXSR | if osxmmexcpt { CR4_OSXMMEXCPT } else { 0 };
    step64_cr(regs, fpu, CR0_NE | CR0_MP, cr4, code, mem)
}

/// [`step64_fp`] with the floating-point control bits of CR0 (MP, EM, TS,
/// NE) and CR4 (OSFXSR, OSXMMEXCPT) given: `cr0_fp` and `cr4_fp` are ORed
/// into the bits 64-bit mode needs.
pub fn step64_cr(
    regs: &mut Regs,
    fpu: &mut Fpu,
    cr0_fp: u64,
    cr4_fp: u64,
    code: &[u8],
    mem: &mut FlatMem,
) -> Result<(), StepError> {
    let other = |e: softmmu::MemError| StepError::Other(e.to_string());
    let gm = GuestMemory::new();
    let page = |a: u64| a & !(PAGE_SIZE - 1);
    let data_lo = page(mem.base);
    let data_hi = page(mem.base + mem.bytes.len() as u64 + PAGE_SIZE - 1);
    let code_lo = page(regs.rip);
    let code_hi = page(regs.rip + code.len() as u64 + PAGE_SIZE - 1);
    if code_lo < data_hi && data_lo < code_hi {
        let lo = data_lo.min(code_lo);
        let hi = data_hi.max(code_hi);
        gm.set_user_memory_region(
            0,
            MemFlags::empty(),
            Gpa::new(lo),
            hi - lo,
            Backing::Anonymous,
        )
        .map_err(other)?;
    } else {
        gm.set_user_memory_region(
            0,
            MemFlags::empty(),
            Gpa::new(data_lo),
            data_hi - data_lo,
            Backing::Anonymous,
        )
        .map_err(other)?;
        gm.set_user_memory_region(
            1,
            MemFlags::empty(),
            Gpa::new(code_lo),
            code_hi - code_lo,
            Backing::Anonymous,
        )
        .map_err(other)?;
    }
    gm.write_phys(Gpa::new(mem.base), &mem.bytes)
        .map_err(other)?;
    gm.write_phys(Gpa::new(regs.rip), code).map_err(other)?;

    let mut cpu = crate::cpu::Cpu::new();
    let mut s = Sregs {
        cs: Segment::flat(8, 0xb, false, true),
        ds: Segment::flat(0x10, 0x3, true, false),
        cr0: CR0_PE | CR0_ET | cr0_fp,
        cr4: CR4_PAE | cr4_fp,
        efer: EFER_LME | EFER_LMA,
        ..cpu.get_sregs()
    };
    s.es = s.ds;
    s.ss = s.ds;
    s.fs = s.ds;
    s.gs = s.ds;
    cpu.set_sregs(&s);
    cpu.set_regs(regs);
    cpu.set_fpu(fpu);
    let mut mmu = Mmu::new(gm.clone());
    let mut io = crate::exec::io::IoState::default();
    // The host's vendor: its behaviour is what the caller compares with.
    let mut sys = SysState::new(
        0,
        1,
        std::sync::Arc::new(crate::apic::ApicBus::new()),
        &crate::cpu::model::CpuModel::host(),
        crate::system::entropy::DEFAULT_SEED,
    );
    mmu.set_phys_addr_bits(sys.cpuid.phys_bits());
    mmu.enter();
    let mut ins = Instruction::default();
    let mut bytes = [0u8; 16];
    let r = {
        let instret = cpu.instret;
        let mut x = Exec {
            cpu: &mut cpu,
            mmu: &mut mmu,
            io: &mut io,
            sys: &mut sys,
            next_rip: 0,
            instret,
            implicit_supervisor: false,
            fast_forms: true,
            signals: Signals::default(),
            code: crate::exec::cache::CodePages::detached(),
        };
        let r = step(&mut x, &mut ins, &mut bytes);
        x.cpu.instret = x.instret;
        r
    };
    mmu.leave();
    *fpu = cpu.get_fpu();
    match r {
        StepResult::Done => {}
        StepResult::Exception(e) => {
            return Err(StepError::Exception {
                vector: e.vector,
                error_code: e.error_code(),
            })
        }
        StepResult::Unimplemented => {
            return Err(StepError::Unimplemented(format!("{:?}", ins.code())))
        }
        StepResult::Exit => return Err(StepError::Other("instruction needs I/O".into())),
    }
    if !io.queue.is_empty() {
        return Err(StepError::Other("instruction did I/O".into()));
    }
    *regs = cpu.get_regs();
    gm.read_phys(Gpa::new(mem.base), &mut mem.bytes)
        .map_err(other)?;
    Ok(())
}

/// The iced-x86 `Code`s emu-core implements.
pub fn implemented_codes() -> Vec<Code> {
    crate::exec::table::implemented_codes()
}

/// The RFLAGS bits defined after `code` (undefined status flags masked
/// out), or `None` if `code` is not implemented.
pub fn defined_flags(code: Code) -> Option<u64> {
    crate::exec::table::undefined_flags(code).map(|u| !u)
}

/// The CPUID features of the instruction families still being added on
/// other branches (x87, MMX, SSE..SSE4.2): the model advertises them, so
/// their forms that softvm lacks end a run with an internal error. The
/// tests that look for such forms (`emu-core/tests/model_coverage.rs`,
/// `testsuite/tests/random_code.rs`) accept these and print them; the
/// list is emptied when the families are merged.
pub const FEATURES_IN_PROGRESS: &[CpuidFeature] = &[
    CpuidFeature::FPU,
    CpuidFeature::FPU387,
];

/// Single forms of those families whose feature is a base one: WAIT
/// (FWAIT) belongs to the x87 family. Emptied with
/// [`FEATURES_IN_PROGRESS`].
pub const CODES_IN_PROGRESS: &[Code] = &[Code::Wait];

/// Whether `code` belongs to a family still in progress (see
/// [`FEATURES_IN_PROGRESS`]).
pub fn in_progress(code: Code) -> bool {
    CODES_IN_PROGRESS.contains(&code)
        || code
            .cpuid_features()
            .iter()
            .any(|f| FEATURES_IN_PROGRESS.contains(f))
}
