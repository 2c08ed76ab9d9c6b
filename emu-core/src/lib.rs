//! emu-core: the x86-64 CPU of softvm, and its KVM-shaped API.
//!
//! ```
//! use emu_core::{Vm, VmConfig, VcpuExit, Regs, Segment};
//! use softmmu::{Backing, MemFlags};
//!
//! let vm = Vm::new(VmConfig::default());
//! vm.set_user_memory_region(0, MemFlags::empty(), 0, 0x10000, Backing::Anonymous).unwrap();
//! // Real mode at 0x1000: mov al, 0x42; out 0x80, al; hlt
//! vm.memory().write_phys(softmmu::Gpa::new(0x1000), &[0xb0, 0x42, 0xe6, 0x80, 0xf4]).unwrap();
//! let mut vcpu = vm.create_vcpu(0);
//! let mut sregs = vcpu.get_sregs();
//! sregs.cs = Segment::real_mode(0, true);
//! vcpu.set_sregs(&sregs);
//! vcpu.set_regs(&Regs { rip: 0x1000, rflags: 2, ..Regs::default() });
//! match vcpu.run() {
//!     VcpuExit::IoOut(port, data) => assert_eq!((port, data), (0x80, &[0x42u8][..])),
//!     other => panic!("unexpected exit {other:?}"),
//! }
//! assert_eq!(vcpu.run(), VcpuExit::Hlt);
//! ```

pub mod api_types;
pub mod apic;
pub mod cpu;
pub mod cpuid;
pub mod exception;
pub mod exec;
pub mod fp;
pub mod ops;
pub mod system;
pub mod testing;
pub mod vcpu;
pub mod vm;

pub use api_types::{DTable, Fpu, MsrEntry, Regs, Segment, Sregs};
pub use cpuid::CpuidEntry;
pub use exception::Exception;
pub use vcpu::{CpuEvent, CpuSink, MpState, Vcpu, VcpuError, VcpuExit};
pub use vm::{Vm, VmConfig};
