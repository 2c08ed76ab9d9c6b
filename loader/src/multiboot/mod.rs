//! Multiboot v1: the header in the image, its a.out-kludge address fields,
//! and the multiboot information structure built in guest RAM.

mod header;
mod info;

pub use header::BOOTLOADER_MAGIC;
pub(crate) use header::{check_flags, scan, MultibootHeader, Scan};

use header::kludge_segment;
use info::{build_info, info_layout, place_modules};

use crate::elf::ElfHeader;
use crate::layout::{memory_map, FOUR_GIB, GDT_ADDR, GDT_SIZE, MULTIBOOT_INFO_ADDR};
use crate::layout::{MULTIBOOT_STACK_TOP, PAGE_SIZE};
use crate::place::Placer;
use crate::plan::{check_reserved, check_segments, image_end, translate_entry};
use crate::plan::{Plan, BIOS_AREA};
use crate::{cpu, BootState, ImageKind, LoadError, LoadOptions};

/// Checks the strings that become C strings.
fn check_strings(opts: &LoadOptions) -> Result<(), LoadError> {
    if opts.cmdline.contains('\0') {
        return Err(LoadError::NulInString {
            what: "command line".into(),
        });
    }
    for (i, m) in opts.modules.iter().enumerate() {
        if m.name.contains('\0') {
            return Err(LoadError::NulInString {
                what: format!("name of module {i}"),
            });
        }
    }
    Ok(())
}

/// Validates a multiboot image against the options and plans its load.
pub(crate) fn prepare<'a>(
    image: &'a [u8],
    header: &MultibootHeader,
    elf: Option<&ElfHeader>,
    opts: &'a LoadOptions,
) -> Result<(BootState, Plan<'a>), LoadError> {
    check_flags(header)?;
    check_strings(opts)?;
    let (segs, entry) = match (&header.addr, elf) {
        (Some(a), _) => {
            let (seg, entry) = kludge_segment(image, header.offset, a)?;
            (vec![seg], entry)
        }
        (None, Some(elf)) => {
            let segs = elf.segments(image)?;
            (segs, elf.header.e_entry)
        }
        (None, None) => return Err(LoadError::NotElfNoAddressFields),
    };
    check_segments(&segs, opts.mem_size, Some(FOUR_GIB))?;
    let entry = if header.addr.is_some() {
        // The a.out-kludge entry is physical already.
        let inside = segs
            .iter()
            .any(|s| entry >= s.paddr && entry - s.paddr < s.memsz);
        if !inside {
            return Err(LoadError::EntryOutsideSegments { entry });
        }
        entry
    } else {
        translate_entry(&segs, entry)?
    };

    check_reserved(&segs, &[BIOS_AREA])?;
    let map = memory_map(opts.mem_size);
    let modules = place_modules(image_end(&segs), opts)?;
    // The loader's own data goes where no segment or module is (place.rs).
    let mut placer = Placer::new(opts.mem_size, &segs, &modules);
    let gdt = placer.place("GDT", GDT_SIZE, 16, GDT_ADDR)?;
    let info_len = info_layout(opts, map.len() as u64, 0)?.end;
    let info_addr = placer.place(
        "multiboot information",
        info_len,
        PAGE_SIZE,
        MULTIBOOT_INFO_ADDR,
    )?;
    let layout = info_layout(opts, map.len() as u64, info_addr)?;
    let info = build_info(opts, &layout, &map, &modules);

    let mut plan = Plan::default();
    for s in &segs {
        plan.segment(s);
    }
    plan.bytes(gdt, cpu::gdt_bytes(false));
    plan.bytes(info_addr, info);
    for (&(start, _), m) in modules.iter().zip(&opts.modules) {
        plan.bytes(start, m.data.as_slice());
    }
    let (regs, mut sregs) = cpu::multiboot_state(entry, info_addr, MULTIBOOT_STACK_TOP);
    sregs.gdt.base = gdt;
    let state = BootState {
        kind: ImageKind::Multiboot32,
        regs,
        sregs,
        entry,
    };
    Ok((state, plan))
}
