//! What the QEMU front end prints when runners probe it: the version line
//! (`--version`, first line of `-h`, parsed as "QEMU emulator version
//! MAJOR.MINOR.MICRO"), the help (grepped for "QEMU"), and the lists of
//! devices, machines, accelerators and CPU models, each listing exactly
//! what softvm has, so that a runner choosing options by them is right.

/// The QEMU version whose command line the front end follows.
pub const QEMU_VERSION: &str = "7.2.0";

/// The devices `-device` accepts, as (name, bus, what softvm does).
pub const DEVICES: &[(&str, &str, &str)] = &[
    (
        "isa-debug-exit",
        "ISA",
        "a write of v to its ports ends the run with status (v << 1) | 1",
    ),
    (
        "pc-testdev",
        "ISA",
        "QEMU's test device: scratch port 0xe0, interrupt lines at 0x2000, MMIO at 0xff000000",
    ),
];

/// `--version`.
pub fn version() -> String {
    format!(
        "QEMU emulator version {QEMU_VERSION} (softvm {})\n\
         softvm's QEMU-compatible front end: it takes QEMU's command line and runs softvm, not QEMU\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// `-h` / `--help`.
pub fn help(prog: &str) -> String {
    format!(
        "{}usage: {prog} [options]\n\n\
This is softvm answering QEMU's command line: a pure-software x86-64 machine (like QEMU's\n\
'pc' under TCG) that boots multiboot and ELF64 test kernels. Options it accepts:\n\n\
-kernel FILE        the kernel to boot (multiboot, e.g. kvm-unit-tests .flat, or ELF64)\n\
-append STR         its command line\n\
-initrd FILE[,FILE] multiboot modules\n\
-m SIZE             RAM: 256, 256M, 1.5G, size=4G (2M to 64G)\n\
-smp N[,sockets=S,cores=C,threads=T,maxcpus=M]   vCPUs (1 to 255)\n\
-cpu max|host       the CPU model (-cpu help)\n\
-serial stdio|file:PATH|none   COM1\n\
-device isa-debug-exit[,iobase=N,iosize=N] | pc-testdev   (-device help)\n\
-machine [pc][,accel=tcg|kvm][,pit=on|off]   (-machine help); -M is the same\n\
-accel tcg|kvm, -enable-kvm   accepted: both run softvm\n\
-display none, -nographic, -vga none, -vnc none, -monitor none, -nodefaults, -name NAME,\n\
-no-reboot, -global kvm-pit.lost_tick_policy=discard, -overcommit mem-lock=..,cpu-pm=..\n\
-S, -s, -gdb        refused: softvm has no gdb stub yet\n\
-version, -h        this text\n\n\
Exit status: (v << 1) | 1 (low 8 bits) when the guest writes v to isa-debug-exit; 0 guest\n\
power-off; softvm's own outcomes are even: 2 usage or load error, 4 triple fault, 6\n\
unsupported instruction, 10 guest halted forever, 12 internal error, 124 timeout.\n",
        version()
            .lines()
            .next()
            .map(|l| format!("{l}\n"))
            .unwrap_or_default()
    )
}

/// `-device help` / `-device ?`: QEMU's format, one category.
pub fn devices() -> String {
    let mut s = String::from("Misc devices:\n");
    for (name, bus, desc) in DEVICES {
        s.push_str(&format!("name \"{name}\", bus {bus}, desc \"{desc}\"\n"));
    }
    s
}

/// `-machine help`.
pub fn machines() -> String {
    "Supported machines are:\n\
pc                   Standard PC on softvm (8259, 8254 PIT, I/O APIC, fw_cfg) (default)\n"
        .into()
}

/// `-accel help`.
pub fn accels() -> String {
    "Accelerators supported in QEMU binary:\ntcg\nkvm\n(both run softvm's interpreter)\n".into()
}

/// `-cpu help`.
pub fn cpus() -> String {
    emu_core::cpu::model::help()
}
