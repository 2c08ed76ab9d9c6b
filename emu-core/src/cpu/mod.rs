//! Architectural CPU state.

pub mod flags;
pub mod fpu;
pub mod hot;
pub mod model;
pub mod state;

pub use flags::Flags;
pub use state::{Cpu, Mode, SegReg};
