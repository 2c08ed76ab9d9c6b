//! Register files in the shape of KVM's `kvm_regs`, `kvm_sregs` and
//! `kvm_fpu`, so that a VMM written against kvm-ioctls ports over field by
//! field.

/// General registers, RIP and RFLAGS (`struct kvm_regs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

/// A segment register with its hidden descriptor cache (`struct kvm_segment`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    /// Descriptor type field (bits 8..=11 of the descriptor's high dword).
    pub type_: u8,
    pub present: u8,
    pub dpl: u8,
    /// D/B bit: default operand size 32.
    pub db: u8,
    /// S bit: code/data (1) or system (0) descriptor.
    pub s: u8,
    /// L bit: 64-bit code segment.
    pub l: u8,
    pub g: u8,
    pub avl: u8,
    pub unusable: u8,
}

impl Segment {
    /// A flat, present segment as firmware leaves it: base 0, 4 GiB limit.
    pub fn flat(selector: u16, type_: u8, db: bool, l: bool) -> Segment {
        Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector,
            type_,
            present: 1,
            dpl: 0,
            db: db as u8,
            s: 1,
            l: l as u8,
            g: 1,
            avl: 0,
            unusable: 0,
        }
    }

    /// The state of a segment register after RESET in real mode.
    pub fn real_mode(selector: u16, code: bool) -> Segment {
        Segment {
            base: u64::from(selector) << 4,
            limit: 0xffff,
            selector,
            type_: if code { 0xb } else { 0x3 },
            present: 1,
            dpl: 0,
            db: 0,
            s: 1,
            l: 0,
            g: 0,
            avl: 0,
            unusable: 0,
        }
    }
}

/// GDTR or IDTR (`struct kvm_dtable`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DTable {
    pub base: u64,
    pub limit: u16,
}

/// Segment and control registers (`struct kvm_sregs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sregs {
    pub cs: Segment,
    pub ds: Segment,
    pub es: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ss: Segment,
    pub tr: Segment,
    pub ldt: Segment,
    pub gdt: DTable,
    pub idt: DTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub apic_base: u64,
}

/// x87, MMX and SSE state (`struct kvm_fpu`, the FXSAVE image's fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fpu {
    /// ST(0)..ST(7) in stack order, 10 bytes each in 16-byte slots (the
    /// MMX registers are the low 8 bytes of the *physical* registers, so
    /// MMi is `fpr[(i - TOP) & 7]`).
    pub fpr: [[u8; 16]; 8],
    pub fcw: u16,
    pub fsw: u16,
    /// Abridged tag word (FXSAVE format): bit i set = physical register i
    /// holds a value.
    pub ftwx: u8,
    pub last_opcode: u16,
    pub last_ip: u64,
    pub last_dp: u64,
    pub xmm: [[u8; 16]; 16],
    pub mxcsr: u32,
}

impl Default for Fpu {
    /// The state after FNINIT, as KVM reports a new vCPU.
    fn default() -> Self {
        Fpu {
            fpr: [[0; 16]; 8],
            fcw: 0x37f,
            fsw: 0,
            ftwx: 0,
            last_opcode: 0,
            last_ip: 0,
            last_dp: 0,
            xmm: [[0; 16]; 16],
            mxcsr: 0x1f80,
        }
    }
}

/// One model-specific register (`struct kvm_msr_entry`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsrEntry {
    pub index: u32,
    pub data: u64,
}
