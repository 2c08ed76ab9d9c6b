//! Exits to the VMM for port I/O and MMIO, and the data the VMM completes.
//!
//! Reads (IN, MMIO loads) abort the instruction with [`Fault::Exit`]; the
//! VMM fills in the data and the next `run()` executes the instruction again
//! from the start, this time finding the data here. Instructions are written
//! so that all their reads precede their writes, so the first attempt has
//! changed nothing. Writes (OUT, MMIO stores) complete the instruction and
//! are handed to the VMM afterwards, in order.

use crate::exception::{ExecResult, Fault};
use std::collections::VecDeque;

/// One request to the VMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoRequest {
    PioIn { port: u16, size: u8 },
    PioOut { port: u16, size: u8, data: u32 },
    MmioRead { gpa: u64, size: u8 },
    MmioWrite { gpa: u64, size: u8, data: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadKey {
    Pio(u16, u8),
    Mmio(u64, u8),
}

/// Pending requests and completed reads of the current instruction.
#[derive(Debug, Default)]
pub struct IoState {
    /// Reads the VMM has answered, in the order the instruction makes them.
    completed: Vec<(ReadKey, u64)>,
    /// How many of `completed` this attempt has consumed.
    cursor: usize,
    /// Requests to hand to the VMM, oldest first.
    pub queue: VecDeque<IoRequest>,
    /// The read the VMM must answer before the next run.
    pub awaiting: Option<IoRequest>,
}

impl IoState {
    /// A new instruction starts (or restarts).
    #[inline]
    pub fn begin_instruction(&mut self) {
        self.cursor = 0;
    }

    /// Whether the VMM has answered reads of an instruction that has not
    /// completed yet.
    #[inline]
    pub fn has_completed(&self) -> bool {
        !self.completed.is_empty()
    }

    /// The instruction completed: forget its reads.
    #[inline]
    pub fn end_instruction(&mut self) {
        if !self.completed.is_empty() {
            self.completed.clear();
        }
        self.cursor = 0;
    }

    fn read(&mut self, key: ReadKey, req: IoRequest) -> ExecResult<u64> {
        if let Some(&(k, v)) = self.completed.get(self.cursor) {
            if k == key {
                self.cursor += 1;
                return Ok(v);
            }
            // A different read than last time: the guest changed under us
            // (another vCPU wrote the code); start over.
            self.completed.truncate(self.cursor);
        }
        self.awaiting = Some(req);
        Err(Fault::Exit)
    }

    pub fn pio_in(&mut self, port: u16, size: u8) -> ExecResult<u64> {
        self.read(ReadKey::Pio(port, size), IoRequest::PioIn { port, size })
    }

    pub fn mmio_read(&mut self, gpa: u64, size: u8) -> ExecResult<u64> {
        self.read(ReadKey::Mmio(gpa, size), IoRequest::MmioRead { gpa, size })
    }

    pub fn pio_out(&mut self, port: u16, size: u8, data: u32) {
        self.queue.push_back(IoRequest::PioOut { port, size, data });
    }

    pub fn mmio_write(&mut self, gpa: u64, size: u8, data: u64) {
        self.queue
            .push_back(IoRequest::MmioWrite { gpa, size, data });
    }

    /// The VMM's answer to `awaiting` (little-endian bytes).
    pub fn complete_read(&mut self, data: &[u8]) {
        if let Some(req) = self.awaiting.take() {
            let mut v = [0u8; 8];
            let n = data.len().min(8);
            v[..n].copy_from_slice(&data[..n]);
            let key = match req {
                IoRequest::PioIn { port, size } => ReadKey::Pio(port, size),
                IoRequest::MmioRead { gpa, size } => ReadKey::Mmio(gpa, size),
                _ => return,
            };
            self.completed.push((key, u64::from_le_bytes(v)));
        }
    }

    /// Drop everything (vCPU reset).
    pub fn reset(&mut self) {
        *self = IoState::default();
    }
}
