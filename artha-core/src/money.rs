//! Money in integer base units: 1 ARTH = 10^18 base units (`wei`), the
//! chain's native currency. Never floats.
//!
//! Text forms (strict, unit always explicit in data files):
//! - `"4.71 ARTH"`: a decimal number of ARTH with at most 18 fractional digits;
//! - `"4710000000000000000 wei"`: an integer number of base units.
//!
//! [`Amount`] serializes as the ARTH form, which is exact.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};
use crate::hash::truncate;
use crate::spec::JobSpec;

/// Number of decimals of ARTH.
pub const DECIMALS: u32 = 18;
/// Base units in one ARTH.
pub const WEI_PER_ARTH: u128 = 1_000_000_000_000_000_000;

/// An amount of ARTH in base units (10^-18 ARTH).
///
/// ```
/// use artha_core::Amount;
/// let a: Amount = "4.71 ARTH".parse().unwrap();
/// assert_eq!(a.wei(), 4_710_000_000_000_000_000);
/// assert_eq!(a.to_string(), "4.71 ARTH");
/// assert_eq!("4710000000000000000 wei".parse::<Amount>().unwrap(), a);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Amount(u128);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// An amount of `wei` base units.
    pub const fn from_wei(wei: u128) -> Self {
        Amount(wei)
    }

    /// Whole ARTH; `None` on overflow.
    pub const fn from_arth(arth: u128) -> Option<Self> {
        match arth.checked_mul(WEI_PER_ARTH) {
            Some(w) => Some(Amount(w)),
            None => None,
        }
    }

    /// The amount in base units.
    pub const fn wei(self) -> u128 {
        self.0
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + rhs`, `None` on overflow.
    pub const fn checked_add(self, rhs: Amount) -> Option<Amount> {
        match self.0.checked_add(rhs.0) {
            Some(v) => Some(Amount(v)),
            None => None,
        }
    }

    /// `self - rhs`, `None` when `rhs > self`.
    pub const fn checked_sub(self, rhs: Amount) -> Option<Amount> {
        match self.0.checked_sub(rhs.0) {
            Some(v) => Some(Amount(v)),
            None => None,
        }
    }

    /// `self × n`, `None` on overflow.
    pub const fn checked_mul(self, n: u128) -> Option<Amount> {
        match self.0.checked_mul(n) {
            Some(v) => Some(Amount(v)),
            None => None,
        }
    }

    /// Parses a decimal number of ARTH without a unit (`"4.71"`, `"1000"`),
    /// as a command-line `--budget` takes it.
    pub fn parse_arth(s: &str) -> Result<Self> {
        parse_decimal(s, DECIMALS).map(Amount)
    }
}

/// Parses `int[.frac]` into an integer scaled by 10^`decimals`, exactly.
fn parse_decimal(s: &str, decimals: u32) -> Result<u128> {
    let err =
        |msg: &str| Error::invalid("amount", msg.to_string()).with_context("input", truncate(s));
    if s.is_empty() {
        return Err(err("must not be empty"));
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            "expected digits before the decimal point (no sign, no exponent)",
        ));
    }
    let mut value: u128 = 0;
    for b in int.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .ok_or_else(|| err("too large"))?;
    }
    let frac = frac.unwrap_or("");
    if s.contains('.') && frac.is_empty() {
        return Err(err("expected digits after the decimal point"));
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("expected only digits after the decimal point"));
    }
    if frac.len() > decimals as usize {
        return Err(err("more than 18 decimal places"));
    }
    let mut scaled = value
        .checked_mul(10u128.pow(decimals))
        .ok_or_else(|| err("too large"))?;
    let mut place = 10u128.pow(decimals);
    for b in frac.bytes() {
        place /= 10;
        scaled = scaled
            .checked_add(u128::from(b - b'0') * place)
            .ok_or_else(|| err("too large"))?;
    }
    Ok(scaled)
}

impl fmt::Display for Amount {
    /// `<whole>[.<fraction without trailing zeros>] ARTH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / WEI_PER_ARTH;
        let frac = self.0 % WEI_PER_ARTH;
        if frac == 0 {
            write!(f, "{whole} ARTH")
        } else {
            let digits = format!("{frac:018}");
            write!(f, "{whole}.{} ARTH", digits.trim_end_matches('0'))
        }
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({} wei)", self.0)
    }
}

impl FromStr for Amount {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Some(n) = s.strip_suffix(" ARTH") {
            return Amount::parse_arth(n);
        }
        if let Some(n) = s.strip_suffix(" wei") {
            return parse_decimal(n, 0).map(Amount);
        }
        Err(Error::invalid(
            "amount",
            "expected `<decimal> ARTH` or `<integer> wei` (the unit is required)",
        )
        .with_context("input", truncate(s)))
    }
}

serde_as_str!(Amount);

/// GPU-milliseconds billed per step and device unless configured: one
/// GPU-second (the reference bills 10 s per step at its scale).
pub const DEFAULT_GPU_MS_PER_STEP: u64 = 1_000;

/// Prices compute: cost = billed GPU-seconds × rate per GPU-second.
///
/// Two uses: [`estimate`](Self::estimate) bounds what a spec may cost by
/// its time limit (the budget must cover it at admission), and
/// [`step_price`](Self::step_price) fixes, at submission, what each
/// committed step pays — the node is paid for steps, never for its clock.
///
/// A job that asks for no GPU is billed as one device (its CPU time is the
/// scarce resource it holds), so every job has a non-zero estimate.
///
/// ```
/// use artha_core::{Amount, CostModel};
/// let m = CostModel::new("0.001 ARTH".parse().unwrap());
/// assert_eq!(m.cost(4_710).unwrap(), "4.71 ARTH".parse::<Amount>().unwrap());
/// assert_eq!(m.cost(4_710).unwrap().wei(), 4_710_000_000_000_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CostModel {
    /// Price of one GPU-second.
    pub rate_per_gpu_second: Amount,
}

/// A cost estimate for a job spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    /// Upper bound of billed GPU-seconds: devices × max duration.
    pub gpu_seconds: u64,
    /// `gpu_seconds × rate`.
    pub cost: Amount,
}

impl CostModel {
    /// A model charging `rate_per_gpu_second`.
    pub const fn new(rate_per_gpu_second: Amount) -> Self {
        CostModel {
            rate_per_gpu_second,
        }
    }

    /// Cost of `gpu_seconds`, exactly; an error on overflow.
    pub fn cost(&self, gpu_seconds: u64) -> Result<Amount> {
        self.rate_per_gpu_second
            .checked_mul(u128::from(gpu_seconds))
            .ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, "cost overflows u128")
                    .with_context("gpu_seconds", gpu_seconds.to_string())
            })
    }

    /// The price of one training step of `spec`, fixed at submission:
    /// billed devices × `gpu_ms_per_step` GPU-milliseconds × the rate
    /// (rounded down to a wei). The node is paid committed steps × this
    /// price, whatever its clock says (DESIGN §6: pay for verified work).
    ///
    /// ```
    /// use artha_core::{Amount, CostModel, JobKind, JobSpec, Runtime};
    /// let m = CostModel::new("0.001 ARTH".parse().unwrap());
    /// let spec = JobSpec::new(JobKind::Train, Runtime::Native("mlp".into()), Amount::ZERO);
    /// // 10 GPU-seconds per step, as in the reference (471 steps × 10 s = 4,710 GPU-s).
    /// assert_eq!(m.step_price(&spec, 10_000).unwrap(), "0.01 ARTH".parse::<Amount>().unwrap());
    /// ```
    pub fn step_price(&self, spec: &JobSpec, gpu_ms_per_step: u64) -> Result<Amount> {
        let ms = u128::from(Self::billed_devices(spec)) * u128::from(gpu_ms_per_step);
        let wei = self
            .rate_per_gpu_second
            .wei()
            .checked_mul(ms)
            .ok_or_else(|| Error::invalid("budget", "step price overflows u128"))?
            / 1000;
        if wei == 0 {
            return Err(Error::invalid(
                "gpu_ms_per_step",
                "the price of a step rounds to zero wei",
            ));
        }
        Ok(Amount::from_wei(wei))
    }

    /// The devices a spec is billed for: its GPU count, or one when it asks
    /// for none.
    pub fn billed_devices(spec: &JobSpec) -> u64 {
        u64::from(spec.resources.gpus.max(1))
    }

    /// The most a spec can cost: billed devices × `max_duration_secs` × rate.
    pub fn estimate(&self, spec: &JobSpec) -> Result<Estimate> {
        let gpu_seconds = Self::billed_devices(spec)
            .checked_mul(spec.resources.max_duration_secs)
            .ok_or_else(|| {
                Error::invalid("resources.max_duration_secs", "GPU-seconds overflow u64")
            })?;
        Ok(Estimate {
            gpu_seconds,
            cost: self.cost(gpu_seconds)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_is_exact() {
        let m = CostModel::new(Amount::parse_arth("0.001").unwrap());
        let c = m.cost(4_710).unwrap();
        assert_eq!(c.wei(), 4_710_000_000_000_000_000);
        assert_eq!(c, Amount::parse_arth("4.71").unwrap());
        assert_eq!(c.to_string(), "4.71 ARTH");
    }

    #[test]
    fn display_and_parse() {
        assert_eq!(Amount::from_wei(1).to_string(), "0.000000000000000001 ARTH");
        assert_eq!(Amount::from_arth(1000).unwrap().to_string(), "1000 ARTH");
        assert_eq!(Amount::ZERO.to_string(), "0 ARTH");
        assert_eq!("1 wei".parse::<Amount>().unwrap(), Amount::from_wei(1));
        assert_eq!(
            Amount::parse_arth("340282366920938463463.374607431768211455").unwrap(),
            Amount::from_wei(u128::MAX)
        );
    }

    #[test]
    fn rejects_malformed_amounts() {
        for bad in [
            "",
            "-1 ARTH",
            "1e3 ARTH",
            "1.",
            ".5 ARTH",
            "1.0000000000000000001 ARTH",
            "NaN ARTH",
            "1,5 ARTH",
            "5",
            "5 arth",
            "1.5 wei",
            "340282366920938463464 ARTH",
            " 1 ARTH",
        ] {
            let e = bad.parse::<Amount>().unwrap_err();
            assert_eq!(e.context_value("field"), Some("amount"), "{bad:?}");
        }
    }

    #[test]
    fn overflow_is_an_error() {
        let m = CostModel::new(Amount::from_wei(u128::MAX));
        assert!(m.cost(2).is_err());
    }
}
