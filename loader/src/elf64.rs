//! Bare-metal ELF64: identity page tables, GDT and stack for a long-mode
//! entry.

use crate::elf::ElfHeader;
use crate::layout::RamLayout;
use crate::layout::{
    ELF64_STACK_BASE, ELF64_STACK_SIZE, GDT_ADDR, GDT_SIZE, GIB, MAX_MEM_SIZE, MIN_IDENTITY_MAP,
    PAGE_SIZE, PML4_ADDR,
};
use crate::place::Placer;
use crate::plan::{check_reserved, check_segments, translate_entry, Plan, BIOS_AREA};
use crate::{cpu, BootState, ImageKind, LoadError, LoadOptions};

/// Page-table entry bits.
const PTE_P: u64 = 1 << 0;
const PTE_RW: u64 = 1 << 1;
const PTE_PS: u64 = 1 << 7;
const TWO_MIB: u64 = 2 << 20;
const ENTRIES: u64 = 512;

/// How many page directories (one per GiB) the identity map needs: all of
/// RAM, which ends above 4 GiB when there is more than the hole leaves
/// room for, and at least the first 4 GiB.
pub(crate) fn pd_count(mem_size: u64) -> u64 {
    RamLayout::new(mem_size)
        .end()
        .max(MIN_IDENTITY_MAP)
        .div_ceil(GIB)
}

/// Bytes of page tables for `pds` page directories: PML4, PDPT, the PDs.
pub(crate) fn page_tables_len(pds: u64) -> u64 {
    (2 + pds) * PAGE_SIZE
}

/// PML4, PDPT and the page directories as one buffer to be written at
/// `base` (4 KiB aligned): PML4[0] -> PDPT, PDPT[i] -> PD i, PD i maps
/// [i GiB, i+1 GiB) with present, writable 2 MiB pages.
pub(crate) fn page_tables(base: u64, pds: u64) -> Vec<u8> {
    let (pdpt, pd0) = (base + PAGE_SIZE, base + 2 * PAGE_SIZE);
    let len = page_tables_len(pds);
    let mut t = vec![0u8; usize::try_from(len).unwrap_or(0)];
    let mut put = |addr: u64, v: u64| {
        let off = usize::try_from(addr - base).unwrap_or(usize::MAX);
        if let Some(dst) = t.get_mut(off..off.saturating_add(8)) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    };
    put(base, pdpt | PTE_P | PTE_RW);
    for i in 0..pds {
        let pd = pd0 + i * PAGE_SIZE;
        put(pdpt + i * 8, pd | PTE_P | PTE_RW);
        for j in 0..ENTRIES {
            let phys = i * GIB + j * TWO_MIB;
            put(pd + j * 8, phys | PTE_P | PTE_RW | PTE_PS);
        }
    }
    t
}

/// Validates an ELF64 image against the options and plans its load.
pub(crate) fn prepare<'a>(
    image: &'a [u8],
    elf: &ElfHeader,
    opts: &'a LoadOptions,
) -> Result<(BootState, Plan<'a>), LoadError> {
    if opts.mem_size > MAX_MEM_SIZE {
        return Err(LoadError::MemoryTooLarge {
            mem_size: opts.mem_size,
            max: MAX_MEM_SIZE,
        });
    }
    if !opts.cmdline.is_empty() {
        return Err(LoadError::NoBootInfoForElf64("command line"));
    }
    if !opts.modules.is_empty() {
        return Err(LoadError::NoBootInfoForElf64("modules"));
    }
    let segs = elf.segments(image)?;
    check_segments(&segs, opts.mem_size, None)?;
    let entry = translate_entry(&segs, elf.header.e_entry)?;
    check_reserved(&segs, &[BIOS_AREA])?;
    let pds = pd_count(opts.mem_size);
    // The loader's own data goes where no segment is (place.rs).
    let mut placer = Placer::new(opts.mem_size, &segs, &[]);
    let gdt = placer.place("GDT", GDT_SIZE, 16, GDT_ADDR)?;
    let cr3 = placer.place("page tables", page_tables_len(pds), PAGE_SIZE, PML4_ADDR)?;
    let stack = placer.place("boot stack", ELF64_STACK_SIZE, 16, ELF64_STACK_BASE)?;

    let mut plan = Plan::default();
    for s in &segs {
        plan.segment(s);
    }
    plan.bytes(gdt, cpu::gdt_bytes(true));
    plan.bytes(cr3, page_tables(cr3, pds));
    let (regs, mut sregs) = cpu::long_mode_state(entry, cr3, stack + ELF64_STACK_SIZE);
    sregs.gdt.base = gdt;
    let state = BootState {
        kind: ImageKind::Elf64,
        regs,
        sregs,
        entry,
    };
    Ok((state, plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MAX_PDS;

    fn entry(t: &[u8], addr: u64) -> u64 {
        let off = (addr - PML4_ADDR) as usize;
        u64::from_le_bytes(t[off..off + 8].try_into().unwrap())
    }

    #[test]
    fn pd_count_covers_ram_and_4g() {
        assert_eq!(pd_count(1 << 20), 4);
        assert_eq!(pd_count(3 * GIB), 4);
        // Above 3 GiB the rest of RAM starts at 4 GiB.
        assert_eq!(pd_count(3 * GIB + 1), 5);
        assert_eq!(pd_count(4 * GIB), 5);
        assert_eq!(pd_count(5 * GIB), 6);
        assert_eq!(pd_count(MAX_MEM_SIZE), MAX_PDS);
    }

    const PDPT_ADDR: u64 = PML4_ADDR + PAGE_SIZE;
    const PD_ADDR: u64 = PML4_ADDR + 2 * PAGE_SIZE;

    #[test]
    fn identity_map() {
        let t = page_tables(PML4_ADDR, 4);
        assert_eq!(t.len() as u64, 2 * PAGE_SIZE + 4 * PAGE_SIZE);
        assert_eq!(entry(&t, PML4_ADDR), PDPT_ADDR | 3);
        assert_eq!(entry(&t, PML4_ADDR + 8), 0);
        assert_eq!(entry(&t, PDPT_ADDR + 3 * 8), (PD_ADDR + 3 * PAGE_SIZE) | 3);
        assert_eq!(entry(&t, PDPT_ADDR + 4 * 8), 0);
        assert_eq!(entry(&t, PD_ADDR), 0x83);
        assert_eq!(entry(&t, PD_ADDR + 8), TWO_MIB | 0x83);
        // The page holding the local APIC at 0xfee00000.
        let pd3 = PD_ADDR + 3 * PAGE_SIZE;
        let idx = (0xfee0_0000u64 - 3 * GIB) / TWO_MIB;
        assert_eq!(entry(&t, pd3 + idx * 8), 0xfee0_0000 | 0x83);
    }
}
