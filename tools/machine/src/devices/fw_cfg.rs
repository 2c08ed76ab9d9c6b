//! QEMU's fw_cfg, legacy I/O interface: a 16-bit selector written to
//! port 0x510, then the item read byte by byte from port 0x511. Test
//! kernels written for QEMU ask it for the CPU count and RAM size.

/// fw_cfg item keys (QEMU's documented numbering).
pub mod key {
    pub const SIGNATURE: u16 = 0x00;
    pub const ID: u16 = 0x01;
    pub const RAM_SIZE: u16 = 0x03;
    pub const NB_CPUS: u16 = 0x05;
    pub const MAX_CPUS: u16 = 0x0f;
}

pub struct FwCfg {
    selector: u16,
    offset: usize,
    ram_size: u64,
    cpus: u16,
}

impl FwCfg {
    pub fn new(ram_size: u64, cpus: u16) -> Self {
        FwCfg {
            selector: 0,
            offset: 0,
            ram_size,
            cpus,
        }
    }

    fn item(&self) -> Vec<u8> {
        match self.selector {
            key::SIGNATURE => b"QEMU".to_vec(),
            key::ID => 1u32.to_le_bytes().to_vec(),
            key::RAM_SIZE => self.ram_size.to_le_bytes().to_vec(),
            key::NB_CPUS | key::MAX_CPUS => self.cpus.to_le_bytes().to_vec(),
            _ => Vec::new(),
        }
    }

    pub fn read(&mut self, port: u16, _size: usize) -> u32 {
        if port == 0x510 {
            return u32::from(self.selector);
        }
        let b = self.item().get(self.offset).copied().unwrap_or(0);
        self.offset += 1;
        u32::from(b)
    }

    pub fn write(&mut self, port: u16, v: u32, _size: usize) {
        if port == 0x510 {
            self.selector = v as u16;
            self.offset = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_signature_and_cpus() {
        let mut f = FwCfg::new(128 << 20, 4);
        f.write(0x510, 0, 2);
        let sig: Vec<u8> = (0..4).map(|_| f.read(0x511, 1) as u8).collect();
        assert_eq!(sig, b"QEMU");
        f.write(0x510, u32::from(key::NB_CPUS), 2);
        assert_eq!(f.read(0x511, 1), 4);
        f.write(0x510, u32::from(key::RAM_SIZE), 2);
        let ram: Vec<u8> = (0..8).map(|_| f.read(0x511, 1) as u8).collect();
        assert_eq!(u64::from_le_bytes(ram.try_into().unwrap()), 128 << 20);
    }
}
