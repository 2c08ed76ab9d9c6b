//! The PC platform a test kernel expects, through `softvm run`: images
//! linked low in memory boot (the loader's data moves out of their way),
//! ACPI S3 suspends the machine and an RTC alarm resumes it at the FACS
//! waking vector in real mode, S5 powers off, the reset register resets.

use iced_x86::code_asm::*;
use std::path::PathBuf;
use std::process::{Command, Output};
use testsuite::guest;
use testsuite::image::{self, Segment};

fn run(img: &[u8], name: &str, args: &[&str]) -> (Output, PathBuf) {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("platform-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, img).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_softvm"))
        .arg("run")
        .arg(&f)
        .args(["--timeout", "30"])
        .args(args)
        .output()
        .unwrap();
    (o, f)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A multiboot kernel linked at `base` (one segment of `memsz` bytes)
/// whose 32-bit code exits with the first byte of the command line the
/// multiboot information (EBX) points to.
fn low_kernel(base: u64, memsz: u64) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(esi, dword_ptr(ebx + 16)).unwrap();
    a.movzx(eax, byte_ptr(esi)).unwrap();
    a.mov(dx, 0xf4).unwrap();
    a.out(dx, eax).unwrap();
    a.hlt().unwrap();
    let mut data = image::multiboot_header().to_vec();
    data.resize(16, 0);
    data.extend(a.assemble(base + 16).unwrap());
    let seg = Segment {
        paddr: base,
        data,
        memsz,
    };
    image::elf(false, base + 16, &[seg])
}

#[test]
fn images_linked_at_0x1000_0x8000_and_0x9000_boot() {
    // 0x8000..0xa86c is where kvm-unit-tests' realmode.flat has its code.
    for (base, memsz) in [(0x1000u64, 0x3000u64), (0x8000, 0x286c), (0x9000, 0x1000)] {
        let (o, path) = run(&low_kernel(base, memsz), &format!("low-{base:x}.elf"), &[]);
        // The command line starts with the image's path, an absolute one.
        assert!(path.is_absolute());
        assert_eq!(
            o.status.code(),
            Some(i32::from(b'/') << 1 | 1),
            "image at {base:#x}: {}",
            stderr(&o)
        );
    }
}

/// Where the machine's FACS is (the tables of a 1-vCPU machine; the
/// layout does not depend on the vCPU count).
fn facs() -> u64 {
    softvm_machine::acpi::build(1).0.facs
}

/// Memory the guest marks before suspending; the resume code reports it.
const MARK: u64 = 0x7f00;
/// The real-mode resume code's address (a segment of the image).
const RESUME: u64 = 0x8000;

/// Real-mode code at [`RESUME`]: checks that it runs in real mode and that
/// PM1_STS reports the RTC wake, then exits with the value at [`MARK`].
fn resume_code() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    let mut bad = a.create_label();
    a.mov(eax, cr0).unwrap();
    a.test(al, 1).unwrap();
    a.jnz(bad).unwrap();
    a.mov(dx, 0x600).unwrap();
    a.in_(ax, dx).unwrap();
    a.cmp(ax, 0x8400).unwrap(); // WAK_STS | RTC_STS
    a.jne(bad).unwrap();
    a.mov(eax, dword_ptr(MARK as u32)).unwrap();
    a.mov(dx, 0xf4).unwrap();
    a.out(dx, eax).unwrap();
    a.hlt().unwrap();
    a.set_label(&mut bad).unwrap();
    a.mov(eax, 0x77u32).unwrap();
    a.mov(dx, 0xf4).unwrap();
    a.out(dx, eax).unwrap();
    a.hlt().unwrap();
    a.assemble(RESUME).unwrap()
}

/// A guest that sets the FACS waking vector, enables the RTC alarm (every
/// second) as a wake-up event if `rtc_en`, and writes S3 to PM1a control;
/// the instructions after the write overwrite the mark, so a resume that
/// ran them reports 1.
fn s3_guest(rtc_en: bool) -> Vec<u8> {
    let facs = facs();
    let body = guest::long_mode(|a| {
        a.mov(dword_ptr(MARK), 0x2a)?;
        a.mov(rbx, facs)?;
        a.mov(dword_ptr(rbx + 12), RESUME as u32)?;
        if rtc_en {
            a.mov(dx, 0x602)?;
            a.mov(ax, 0x400)?;
            a.out(dx, ax)?;
        }
        for reg in [1u32, 3, 5] {
            a.mov(al, reg)?;
            a.out(0x70, al)?;
            a.mov(al, 0xc0)?;
            a.out(0x71, al)?;
        }
        a.mov(al, 0x0b)?;
        a.out(0x70, al)?;
        a.in_(al, 0x71)?;
        a.or(al, 0x20)?; // AIE
        a.out(0x71, al)?;
        a.mov(dx, 0x604)?;
        a.mov(ax, 0x2400)?; // SLP_EN | SLP_TYP 1 (S3)
        a.out(dx, ax)?;
        let mut spin = a.create_label();
        a.set_label(&mut spin)?;
        a.mov(dword_ptr(MARK), 1)?;
        a.jmp(spin)
    })
    .unwrap();
    let mut segs = image::segments_of(&body);
    segs.push(Segment {
        paddr: RESUME,
        memsz: 0x100,
        data: resume_code(),
    });
    image::elf(false, guest::LOAD + 16, &segs)
}

#[test]
fn s3_resumes_at_the_waking_vector_in_real_mode_after_the_rtc_alarm() {
    for vcpus in ["1", "2"] {
        let t = std::time::Instant::now();
        let (o, _) = run(&s3_guest(true), "s3.elf", &["--vcpus", vcpus]);
        assert_eq!(
            o.status.code(),
            Some(0x2a << 1 | 1),
            "{vcpus} vCPUs: {}",
            stderr(&o)
        );
        // The alarm fires at the next second.
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }
}

#[test]
fn s3_with_no_wake_up_event_enabled_halts_for_good() {
    let (o, _) = run(&s3_guest(false), "s3-no-wake.elf", &[]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(stderr(&o).contains("S3"), "{}", stderr(&o));
}

#[test]
fn s5_powers_off_and_the_reset_register_resets() {
    let off = guest::long_mode(|a| {
        a.mov(dx, 0x604)?;
        a.mov(ax, 0x2000)?; // SLP_EN | SLP_TYP 0 (S5)
        a.out(dx, ax)?;
        guest::exit(a, 3)
    })
    .unwrap();
    let (o, _) = run(&off, "s5.elf", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let reset = guest::long_mode(|a| {
        a.mov(dx, 0xcf9)?;
        a.mov(al, 6)?;
        a.out(dx, al)?;
        guest::exit(a, 3)
    })
    .unwrap();
    let (o, _) = run(&reset, "reset.elf", &[]);
    assert_eq!(o.status.code(), Some(14), "{}", stderr(&o));
    assert!(stderr(&o).contains("reset"), "{}", stderr(&o));
}
