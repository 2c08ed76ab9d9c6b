//! Running the decimal-adjust table on the host CPU in compatibility
//! mode (see `decimal_arithmetic_on_the_host_cpu`).

use super::Entry;
use iced_x86::code_asm::*;

const SIZE: usize = 0x20000;
const RET64: u64 = 0x100;
const CODE32: u64 = 0x200;
const SAVE: u64 = 0x8000;
const FAR32: u64 = 0x8010;
const FAR64: u64 = 0x8020;
const OUT: u64 = 0x9000;
const STACK: u64 = 0x1f000;
/// Linux's user code and data selectors.
const USER32_CS: u16 = 0x23;
const USER_DS: u16 = 0x2b;
const USER_CS: u16 = 0x33;

fn code(base: u64) -> Result<Vec<(u64, Vec<u8>)>, IcedError> {
    let mut e = CodeAssembler::new(64)?;
    for r in [rbx, rbp, r12, r13, r14, r15] {
        e.push(r)?;
    }
    e.mov(rax, rsp)?;
    e.mov(qword_ptr(base + SAVE), rax)?;
    e.jmp(fword_ptr(base + FAR32))?;
    let mut r = CodeAssembler::new(64)?;
    r.mov(rsp, qword_ptr(base + SAVE))?;
    for g in [r15, r14, r13, r12, rbp, rbx] {
        r.pop(g)?;
    }
    r.ret()?;
    let mut c = CodeAssembler::new(32)?;
    c.mov(ax, i32::from(USER_DS))?;
    c.mov(ds, ax)?;
    c.mov(es, ax)?;
    c.mov(esp, (base + STACK) as u32)?;
    c.cld()?;
    c.mov(edi, (base + OUT) as u32)?;
    super::code::table(&mut c)?;
    c.jmp(fword_ptr((base + FAR64) as u32))?;
    let far = |off: u64, sel: u16| {
        let mut v = (off as u32).to_le_bytes().to_vec();
        v.extend(sel.to_le_bytes());
        v
    };
    Ok(vec![
        (0, e.assemble(base)?),
        (RET64, r.assemble(base + RET64)?),
        (CODE32, c.assemble(base + CODE32)?),
        (FAR32, far(base + CODE32, USER32_CS)),
        (FAR64, far(base + RET64, USER_CS)),
    ])
}

/// The table as the host computes it, or why it could not be run.
pub fn table(n: usize) -> Result<Vec<Entry>, String> {
    // SAFETY: a fresh anonymous shared mapping, owned here until the
    // munmap below; nothing else refers to it.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return Err(format!("mmap: {}", std::io::Error::last_os_error()));
    }
    let base = mem as u64;
    let result = (|| {
        let parts = code(base).map_err(|e| e.to_string())?;
        for (off, bytes) in &parts {
            // SAFETY: every part lies inside the mapping (offsets and
            // sizes above are far below SIZE).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    mem.cast::<u8>().add(*off as usize),
                    bytes.len(),
                )
            };
        }
        // SAFETY: fork in a test process: the child only runs the
        // generated code (no allocation, no locks) and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: the trampoline saves and restores every
            // callee-saved register and RSP and returns; the rest is
            // clobbered, as the C ABI allows.
            unsafe {
                let f: extern "C" fn() = std::mem::transmute(mem);
                f();
                libc::_exit(0);
            }
        }
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(format!(
                "the compatibility-mode child did not finish (status {status:#x}): \
                 no 32-bit user code segment?"
            ));
        }
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: OUT + 4n is inside the mapping (n entries of 4
            // bytes, n < 0x4000).
            let w = unsafe {
                mem.cast::<u8>()
                    .add(OUT as usize + 4 * i)
                    .cast::<u32>()
                    .read_unaligned()
            };
            out.push(Entry {
                ax: w as u16,
                flags: (w >> 16) as u16,
            });
        }
        Ok(out)
    })();
    // SAFETY: unmapping what mmap returned, no longer used.
    unsafe { libc::munmap(mem, SIZE) };
    result
}
