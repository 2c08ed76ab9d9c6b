//! The multiboot information structure, memory map and module placement.

use crate::layout::{MapEntry, RamLayout, FOUR_GIB, KIB, MIB, MODULES_MIN_ADDR, PAGE_SIZE};
use crate::{LoadError, LoadOptions};

/// Information-structure flags.
const INFO_MEMORY: u32 = 1 << 0;
const INFO_CMDLINE: u32 = 1 << 2;
const INFO_MODS: u32 = 1 << 3;
const INFO_MMAP: u32 = 1 << 6;
const INFO_LOADER_NAME: u32 = 1 << 9;

/// Size of the information structure up to and including the framebuffer
/// fields, the last ones multiboot v1 defines.
const INFO_SIZE: u64 = 116;
/// Offsets of the fields the loader fills in.
const INFO_FLAGS: usize = 0;
const INFO_MEM_LOWER: usize = 4;
const INFO_MEM_UPPER: usize = 8;
const INFO_CMDLINE_ADDR: usize = 16;
const INFO_MODS_COUNT: usize = 20;
const INFO_MODS_ADDR: usize = 24;
const INFO_MMAP_LENGTH: usize = 44;
const INFO_MMAP_ADDR: usize = 48;
const INFO_LOADER_NAME_ADDR: usize = 64;

/// One memory-map entry: a 4-byte size field (20) then 20 bytes.
const MMAP_ENTRY_SIZE: u64 = 24;
/// One module descriptor: mod_start, mod_end, string, reserved.
const MODULE_DESC_SIZE: u64 = 16;
/// mem_lower in KiB.
const MEM_LOWER_KIB: u32 = 640;
/// The boot loader name given to the kernel.
pub const LOADER_NAME: &str = "softvm";

fn align_up(v: u64, to: u64) -> Option<u64> {
    Some(v.checked_add(to - 1)? & !(to - 1))
}

/// Module placement: page-aligned, one after another above the image
/// (never below 1 MiB), in the RAM below the hole under 4 GiB. Returns
/// (start, end).
pub(super) fn place_modules(
    image_end: u64,
    opts: &LoadOptions,
) -> Result<Vec<(u64, u64)>, LoadError> {
    let limit = RamLayout::new(opts.mem_size).low_end().min(FOUR_GIB);
    let mut next = align_up(image_end.max(MODULES_MIN_ADDR), PAGE_SIZE);
    let mut out = Vec::with_capacity(opts.modules.len());
    for m in &opts.modules {
        let too_big = || LoadError::ModuleDoesNotFit {
            name: m.name.clone(),
            size: m.data.len(),
            limit,
        };
        let start = next.ok_or_else(too_big)?;
        let end = start
            .checked_add(m.data.len() as u64)
            .filter(|&e| e <= limit)
            .ok_or_else(too_big)?;
        out.push((start, end));
        next = align_up(end, PAGE_SIZE);
    }
    Ok(out)
}

/// Where each part of the information area goes (guest-physical).
pub(super) struct InfoLayout {
    base: u64,
    mmap: u64,
    mods: u64,
    loader_name: u64,
    cmdline: u64,
    names: Vec<u64>,
    pub end: u64,
}

/// The information area laid out from `base`: the structure, the memory
/// map (`map_entries` entries), the module list, then the strings. Called
/// with base 0 it gives the area's size (`end`).
pub(super) fn info_layout(
    opts: &LoadOptions,
    map_entries: u64,
    base: u64,
) -> Result<InfoLayout, LoadError> {
    let add = |a: Option<u64>, b: u64| a.and_then(|a| a.checked_add(b));
    let mmap = add(Some(base), align_up(INFO_SIZE, 8).unwrap_or(INFO_SIZE));
    let mods = add(mmap, map_entries.saturating_mul(MMAP_ENTRY_SIZE));
    let loader_name = add(
        mods,
        (opts.modules.len() as u64).saturating_mul(MODULE_DESC_SIZE),
    );
    let cmdline = add(loader_name, LOADER_NAME.len() as u64 + 1);
    let mut cursor = add(cmdline, opts.cmdline.len() as u64 + 1);
    let mut names = Vec::with_capacity(opts.modules.len());
    for m in &opts.modules {
        names.push(cursor.unwrap_or(u64::MAX));
        cursor = add(cursor, m.name.len() as u64 + 1);
    }
    let end = cursor.ok_or(LoadError::NoRoomForBootData {
        what: "multiboot information",
        len: u64::MAX,
    })?;
    Ok(InfoLayout {
        base,
        mmap: mmap.unwrap_or(u64::MAX),
        mods: mods.unwrap_or(u64::MAX),
        loader_name: loader_name.unwrap_or(u64::MAX),
        cmdline: cmdline.unwrap_or(u64::MAX),
        names,
        end,
    })
}

/// A little-endian writer into the information area buffer.
struct Area {
    base: u64,
    bytes: Vec<u8>,
}

impl Area {
    fn put(&mut self, gpa: u64, data: &[u8]) {
        // Every address comes from `info_layout`, which keeps it inside the
        // area; `get_mut` makes a mistake a no-op rather than a panic.
        let Some(off) = gpa
            .checked_sub(self.base)
            .and_then(|o| usize::try_from(o).ok())
        else {
            return;
        };
        let end = off.saturating_add(data.len());
        if let Some(dst) = self.bytes.get_mut(off..end) {
            dst.copy_from_slice(data);
        }
    }

    fn put_u32(&mut self, gpa: u64, v: u32) {
        self.put(gpa, &v.to_le_bytes());
    }

    fn put_u64(&mut self, gpa: u64, v: u64) {
        self.put(gpa, &v.to_le_bytes());
    }

    fn put_cstr(&mut self, gpa: u64, s: &str) {
        self.put(gpa, s.as_bytes());
        self.put(gpa.saturating_add(s.len() as u64), &[0]);
    }
}

/// The information area is placed below 4 GiB, so its addresses fit in
/// 32 bits.
fn low32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Builds the information structure, memory map, module list and strings
/// as one buffer that starts at `layout`'s base.
pub(super) fn build_info(
    opts: &LoadOptions,
    layout: &InfoLayout,
    map: &[MapEntry],
    modules: &[(u64, u64)],
) -> Vec<u8> {
    let base = layout.base;
    let len = usize::try_from(layout.end - base).unwrap_or(0);
    let mut a = Area {
        base,
        bytes: vec![0; len],
    };
    let field = |off: usize| base + off as u64;
    let flags = INFO_MEMORY | INFO_CMDLINE | INFO_MODS | INFO_MMAP | INFO_LOADER_NAME;
    // Upper memory: from 1 MiB to the first hole.
    let mem_upper = RamLayout::new(opts.mem_size).low_end().saturating_sub(MIB) / KIB;
    a.put_u32(field(INFO_FLAGS), flags);
    a.put_u32(field(INFO_MEM_LOWER), MEM_LOWER_KIB);
    a.put_u32(
        field(INFO_MEM_UPPER),
        u32::try_from(mem_upper).unwrap_or(u32::MAX),
    );
    a.put_u32(field(INFO_CMDLINE_ADDR), low32(layout.cmdline));
    a.put_u32(
        field(INFO_MODS_COUNT),
        u32::try_from(modules.len()).unwrap_or(u32::MAX),
    );
    a.put_u32(field(INFO_MODS_ADDR), low32(layout.mods));
    a.put_u32(
        field(INFO_MMAP_LENGTH),
        low32(map.len() as u64 * MMAP_ENTRY_SIZE),
    );
    a.put_u32(field(INFO_MMAP_ADDR), low32(layout.mmap));
    a.put_u32(field(INFO_LOADER_NAME_ADDR), low32(layout.loader_name));

    for (i, m) in map.iter().enumerate() {
        let e = layout.mmap + i as u64 * MMAP_ENTRY_SIZE;
        a.put_u32(e, low32(MMAP_ENTRY_SIZE - 4));
        a.put_u64(e + 4, m.base);
        a.put_u64(e + 12, m.len);
        a.put_u32(e + 20, m.kind as u32);
    }
    for (i, ((&(start, end), m), &name)) in modules
        .iter()
        .zip(&opts.modules)
        .zip(&layout.names)
        .enumerate()
    {
        let d = layout.mods + i as u64 * MODULE_DESC_SIZE;
        // Module ends are checked to be at most 4 GiB; the very last byte
        // of the 32-bit space is the only value that cannot be represented.
        a.put_u32(d, low32(start));
        a.put_u32(d + 4, low32(end));
        a.put_u32(d + 8, low32(name));
        a.put_cstr(name, &m.name);
    }
    a.put_cstr(layout.loader_name, LOADER_NAME);
    a.put_cstr(layout.cmdline, &opts.cmdline);
    a.bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Module;

    fn opts(mem_size: u64, modules: Vec<Module>) -> LoadOptions {
        LoadOptions {
            mem_size,
            cmdline: "a b".into(),
            modules,
            vcpus: 1,
        }
    }

    #[test]
    fn modules_are_page_aligned_above_the_image() {
        let o = opts(
            4 * MIB,
            vec![
                Module::new("a", vec![1; 5]),
                Module::new("b", vec![2; 0x1001]),
                Module::new("c", vec![]),
            ],
        );
        let placed = place_modules(0x10_2345, &o).unwrap();
        assert_eq!(
            placed,
            vec![
                (0x10_3000, 0x10_3005),
                (0x10_4000, 0x10_5001),
                (0x10_6000, 0x10_6000)
            ]
        );
        // Below 1 MiB images still get modules at 1 MiB or above.
        assert_eq!(place_modules(0x2000, &o).unwrap()[0].0, MIB);
        let o = opts(MIB + 0x1000, vec![Module::new("big", vec![0; 0x2000])]);
        assert!(matches!(
            place_modules(MIB, &o),
            Err(LoadError::ModuleDoesNotFit { .. })
        ));
    }

    #[test]
    fn layout_is_relative_to_its_base() {
        let o = opts(16 * MIB, vec![Module::new("m", vec![1])]);
        let at0 = info_layout(&o, 4, 0).unwrap();
        let at = info_layout(&o, 4, 0xe000).unwrap();
        assert_eq!(at.end - 0xe000, at0.end);
        assert_eq!(at.mmap, 0xe000 + 120);
        assert_eq!(at.mods, at.mmap + 4 * 24);
        assert_eq!(at.names[0], at.cmdline + 4);
        let mut o = opts(16 * MIB, vec![]);
        o.cmdline = "x".repeat(0x10_0000);
        assert_eq!(info_layout(&o, 4, 0).unwrap().end, 120 + 96 + 7 + 0x10_0001);
    }
}
