//! Stand-in for hosts that cannot run x86-64 code natively.

use super::fx::FxImage;
use super::{NativeError, Outcome};
use emu_core::Regs;

/// Always fails to construct: the host is not x86-64 Linux.
pub struct NativeRunner {
    _never: core::convert::Infallible,
}

impl NativeRunner {
    pub fn new(_mem_pages: usize) -> Result<NativeRunner, NativeError> {
        Err(NativeError::Unsupported(
            "the host is not x86-64 Linux; differential tests against the host CPU are skipped",
        ))
    }

    pub fn mem_base(&self) -> u64 {
        match self._never {}
    }

    pub fn mem(&self) -> &[u8] {
        match self._never {}
    }

    pub fn mem_mut(&mut self) -> &mut [u8] {
        match self._never {}
    }

    pub fn insn_addr(&self) -> u64 {
        match self._never {}
    }

    pub fn taken_target(&self) -> u64 {
        match self._never {}
    }

    pub fn run(&mut self, _code: &[u8], _regs: &Regs) -> Result<Outcome, NativeError> {
        match self._never {}
    }

    pub fn run_fp(
        &mut self,
        _code: &[u8],
        _regs: &Regs,
        _fp: &FxImage,
    ) -> Result<Outcome, NativeError> {
        match self._never {}
    }
}
