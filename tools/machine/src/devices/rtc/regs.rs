//! Register formats of the RTC (BCD, 12-hour) and the CMOS bytes a PC's
//! firmware fills in.

use super::{B_24H, B_DM_BINARY};

/// A value below 100 in packed BCD.
pub fn to_bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

/// Packed BCD to binary (digits above 9 count as their value, as a chip
/// that adds them would).
pub fn from_bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0f)
}

/// The hours register for `hour` (0..=23) under register B's format: BCD
/// or binary, and in 12-hour mode 1..=12 with bit 7 set after noon.
pub fn encode_hour(hour: u32, b: u8) -> u8 {
    let enc = |x: u32| {
        let x = (x % 100) as u8;
        if b & B_DM_BINARY != 0 {
            x
        } else {
            to_bcd(x)
        }
    };
    if b & B_24H != 0 {
        enc(hour)
    } else {
        let h12 = if hour.is_multiple_of(12) {
            12
        } else {
            hour % 12
        };
        enc(h12) | if hour >= 12 { 0x80 } else { 0 }
    }
}

/// The hour (0..) of an hours register written under register B's format.
pub fn decode_hour(v: u8, b: u8) -> u32 {
    let dec = |x: u8| u32::from(if b & B_DM_BINARY != 0 { x } else { from_bcd(x) });
    if b & B_24H != 0 {
        dec(v)
    } else {
        dec(v & 0x7f) % 12 + if v & 0x80 != 0 { 12 } else { 0 }
    }
}

/// Put a little-endian 16-bit value at `at`.
fn put16(ram: &mut [u8; 128], at: usize, v: u64) {
    let v = u16::try_from(v).unwrap_or(u16::MAX);
    ram[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// The bytes QEMU's PC firmware setup writes: memory sizes, equipment, the
/// CPU count and the checksum of 0x10..=0x2d.
pub fn fill_cmos(ram: &mut [u8; 128], low_ram: u64, high_ram: u64, vcpus: u32) {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    // Base memory: 640 KiB.
    put16(ram, 0x15, 640);
    // Extended memory above 1 MiB in KiB (at most 0xffff), twice.
    let ext = low_ram.saturating_sub(MIB) / KIB;
    put16(ram, 0x17, ext);
    put16(ram, 0x30, ext);
    // Memory above 16 MiB below 4 GiB in 64 KiB units.
    put16(ram, 0x34, low_ram.saturating_sub(16 * MIB) / (64 * KIB));
    // Memory above 4 GiB in 64 KiB units, 24 bits.
    let high = (high_ram / (64 * KIB)).min(0xff_ffff);
    ram[0x5b..0x5e].copy_from_slice(&high.to_le_bytes()[..3]);
    ram[0x5f] = u8::try_from(vcpus.saturating_sub(1)).unwrap_or(u8::MAX);
    // Equipment: a math coprocessor, no floppy, no display adapter.
    ram[0x14] = 0x02;
    let sum: u16 = ram[0x10..=0x2d].iter().map(|&b| u16::from(b)).sum();
    ram[0x2e..0x30].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_and_hours() {
        assert_eq!(to_bcd(59), 0x59);
        assert_eq!(from_bcd(0x59), 59);
        let bcd12 = 0;
        let bin24 = B_DM_BINARY | B_24H;
        for (h, b12, b24) in [
            (0, 0x12, 0),
            (1, 0x01, 1),
            (12, 0x92, 12),
            (13, 0x81, 13),
            (23, 0x91, 23),
        ] {
            assert_eq!(encode_hour(h, bcd12), b12, "{h}");
            assert_eq!(decode_hour(b12, bcd12), h, "{h}");
            assert_eq!(encode_hour(h, bin24), b24, "{h}");
            assert_eq!(decode_hour(b24, bin24), h, "{h}");
        }
        // Binary 12-hour: 11 PM is 0x8b.
        assert_eq!(encode_hour(23, B_DM_BINARY), 0x8b);
    }

    #[test]
    fn cmos_memory_bytes() {
        let mut ram = [0u8; 128];
        fill_cmos(&mut ram, 3 << 30, 2 << 30, 4);
        assert_eq!(u16::from_le_bytes([ram[0x15], ram[0x16]]), 640);
        assert_eq!(u16::from_le_bytes([ram[0x17], ram[0x18]]), 0xffff);
        assert_eq!(u16::from_le_bytes([ram[0x34], ram[0x35]]), 48896);
        assert_eq!(&ram[0x5b..0x5e], &[0x00, 0x80, 0x00]); // 2 GiB / 64 KiB = 0x8000
        assert_eq!(ram[0x5f], 3);
        let mut ram = [0u8; 128];
        fill_cmos(&mut ram, 32 << 20, 0, 1);
        assert_eq!(u16::from_le_bytes([ram[0x30], ram[0x31]]), 31 * 1024);
        assert_eq!(u16::from_le_bytes([ram[0x34], ram[0x35]]), 256);
        let sum: u16 = ram[0x10..=0x2d].iter().map(|&b| u16::from(b)).sum();
        assert_eq!(u16::from_be_bytes([ram[0x2e], ram[0x2f]]), sum);
    }
}
