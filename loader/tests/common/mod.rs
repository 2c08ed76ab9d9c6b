//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod elfbuild;

use std::path::PathBuf;
use std::sync::Arc;

use softmmu::{Backing, Gpa, GuestMemory, MemFlags};

/// Guest memory with `size` bytes of RAM at guest-physical 0.
pub fn guest_memory(size: u64) -> Arc<GuestMemory> {
    let gm = GuestMemory::new();
    gm.set_user_memory_region(0, MemFlags::empty(), Gpa::new(0), size, Backing::Anonymous)
        .expect("create the RAM memslot");
    gm
}

pub fn read(gm: &GuestMemory, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    gm.read_phys(Gpa::new(addr), &mut buf)
        .expect("read guest RAM");
    buf
}

pub fn read_u32(gm: &GuestMemory, addr: u64) -> u32 {
    u32::from_le_bytes(read(gm, addr, 4).try_into().unwrap())
}

pub fn read_u64(gm: &GuestMemory, addr: u64) -> u64 {
    u64::from_le_bytes(read(gm, addr, 8).try_into().unwrap())
}

/// Reads a NUL-terminated string from guest RAM.
pub fn read_cstr(gm: &GuestMemory, addr: u64) -> String {
    let mut out = Vec::new();
    let mut a = addr;
    loop {
        let b = read(gm, a, 1)[0];
        if b == 0 {
            break;
        }
        out.push(b);
        a += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The shared conformance guests: `shared/` is a sibling of the repository
/// checkout (`../shared` from the repo root).
pub fn conformance_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance"
    ))
}

/// Reads a conformance guest, or says why not and returns None.
pub fn conformance_guest(name: &str) -> Option<Vec<u8>> {
    let path = conformance_dir().join(name);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("skipping: cannot read {}: {e}", path.display());
            None
        }
    }
}
