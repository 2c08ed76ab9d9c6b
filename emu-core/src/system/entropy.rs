//! The random numbers RDRAND and RDSEED return: a deterministic generator
//! per vCPU, so that a run can be repeated exactly.
//!
//! The VM configuration's seed (`VmConfig::seed`) keys a ChaCha8 stream
//! cipher (the `rand_chacha` crate, a reviewed implementation of a
//! generator that passes the statistical test suites), and each vCPU reads
//! its own stream of it: the stream number is the vCPU id. Two vCPUs
//! therefore never share values, and the same seed, vCPU count and guest
//! give the same numbers on every run and every host.
//!
//! Real RDRAND output comes from a hardware entropy source through a
//! DRBG; a guest cannot tell the difference from a keyed stream cipher,
//! which is what a DRBG is, only that it repeats across runs with the same
//! seed — the point here.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// The seed used when the VM configuration gives none.
pub const DEFAULT_SEED: u64 = 0x736f_6674_766d_5244;

/// One vCPU's random-number source.
#[derive(Clone, Debug)]
pub struct Entropy {
    rng: ChaCha8Rng,
}

impl Entropy {
    /// The stream of vCPU `vcpu_id` for the VM seed `seed`.
    pub fn new(seed: u64, vcpu_id: u32) -> Entropy {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(u64::from(vcpu_id));
        Entropy { rng }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_repeat_per_seed_and_differ_per_vcpu() {
        let take = |seed, id| {
            let mut e = Entropy::new(seed, id);
            (0..4).map(|_| e.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(take(1, 0), take(1, 0));
        assert_ne!(take(1, 0), take(1, 1));
        assert_ne!(take(1, 0), take(2, 0));
        let v = take(DEFAULT_SEED, 0);
        assert!(v.windows(2).all(|w| w[0] != w[1]));
    }
}
