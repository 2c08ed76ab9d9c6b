//! Helpers shared by the integration tests: a guest with RAM, 4-level page
//! tables written through `write_phys`, and an event recorder.
#![allow(dead_code)]

use softmmu::*;
use std::sync::{Arc, Mutex};

pub const P: u64 = 1;
pub const RW: u64 = 2;
pub const US: u64 = 4;
pub const A: u64 = 1 << 5;
pub const D: u64 = 1 << 6;
pub const PS: u64 = 1 << 7;
pub const G: u64 = 1 << 8;
pub const XD: u64 = 1 << 63;

/// Slot 0: RAM at [0, size).
pub fn guest(size: u64) -> Arc<GuestMemory> {
    let mem = GuestMemory::new();
    mem.set_user_memory_region(0, MemFlags::empty(), Gpa::new(0), size, Backing::Anonymous)
        .unwrap();
    mem
}

/// 8 MiB of RAM and a vCPU's MMU over it.
pub fn setup() -> (Arc<GuestMemory>, Mmu) {
    let mem = guest(0x80_0000);
    let mmu = Mmu::new(mem.clone());
    (mem, mmu)
}

pub fn put64(mem: &GuestMemory, gpa: u64, v: u64) {
    mem.write_phys(Gpa::new(gpa), &v.to_le_bytes()).unwrap();
}

pub fn get64(mem: &GuestMemory, gpa: u64) -> u64 {
    let mut b = [0; 8];
    mem.read_phys(Gpa::new(gpa), &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// 4-level page tables allocated from `next` upwards (tables are zeroed).
pub struct Tables<'a> {
    pub mem: &'a GuestMemory,
    pub root: u64,
    next: u64,
}

impl<'a> Tables<'a> {
    pub fn new(mem: &'a GuestMemory, at: u64) -> Self {
        Tables {
            mem,
            root: at,
            next: at + 0x1000,
        }
    }

    fn alloc(&mut self) -> u64 {
        let t = self.next;
        self.next += 0x1000;
        t
    }

    /// Maps the 4 KiB page of `gva` to `gpa` with leaf `flags` (P added);
    /// intermediate entries get P|RW|US.
    pub fn map(&mut self, gva: u64, gpa: u64, flags: u64) -> u64 {
        self.map_at(gva, gpa, flags, 1)
    }

    /// Maps at `leaf_level` (1 = 4K, 2 = 2M with PS, 3 = 1G with PS).
    /// Returns the gpa of the leaf entry.
    pub fn map_at(&mut self, gva: u64, gpa: u64, flags: u64, leaf_level: u32) -> u64 {
        let mut table = self.root;
        for level in (leaf_level + 1..=4).rev() {
            let e = table + ((gva >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
            let cur = get64(self.mem, e);
            if cur & P == 0 {
                let t = self.alloc();
                put64(self.mem, e, t | P | RW | US);
                table = t;
            } else {
                table = cur & 0x000f_ffff_ffff_f000;
            }
        }
        let e = table + ((gva >> (12 + 9 * (leaf_level - 1))) & 0x1ff) * 8;
        let ps = if leaf_level > 1 { PS } else { 0 };
        put64(self.mem, e, gpa | flags | P | ps);
        e
    }

    pub fn ctx(&self) -> PagingCtx {
        PagingCtx {
            cr0: CR0_PG | CR0_WP,
            cr3: self.root,
            cr4: CR4_PAE,
            efer: EFER_LMA | EFER_NXE,
            ac: false,
        }
    }
}

/// Records events.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<MmuEvent>>);

impl MmuSink for Recorder {
    fn event(&self, ev: &MmuEvent) {
        self.0.lock().unwrap().push(*ev);
    }
}

impl Recorder {
    pub fn take(&self) -> Vec<MmuEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub const READ: Access = Access::supervisor(AccessKind::Read);
pub const WRITE: Access = Access::supervisor(AccessKind::Write);
pub const UREAD: Access = Access::user(AccessKind::Read);
pub const UWRITE: Access = Access::user(AccessKind::Write);

pub fn ram(t: Result<Translation, PageFault>) -> (Gpa, Hva) {
    match t {
        Ok(Translation::Ram { gpa, hva }) => (gpa, hva),
        other => panic!("expected RAM, got {other:?}"),
    }
}
