//! Numbers as AWS compares them: decimal, not binary floating point. A
//! number is held as an integer count of millionths, so `3`, `3.0` and
//! `3.000000` are one value and `0.1 + 0.2`-style drift cannot occur.
//!
//! EventBridge (event-ruler's `ComparableNumber`) accepts -5.0e9..=5.0e9
//! with 6 decimal places; SNS documents -1.0e9..=1.0e9 with 5.
//! <https://github.com/aws/event-ruler#numeric-matching>
//! <https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html>

use std::io::Write;

use serde_json::Number;

/// Millionths: 1.5 is 1_500_000.
pub(crate) type Micros = i64;

/// The range and precision a dialect compares numbers within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NumberLimits {
    /// Largest absolute value, in whole units.
    pub max_abs: i64,
    /// Decimal places kept.
    pub decimals: u32,
}

pub(crate) const EVENTBRIDGE_LIMITS: NumberLimits = NumberLimits {
    max_abs: 5_000_000_000,
    decimals: 6,
};

pub(crate) const SNS_LIMITS: NumberLimits = NumberLimits {
    max_abs: 1_000_000_000,
    decimals: 5,
};

/// Why a number cannot be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberProblem {
    TooPrecise,
    OutOfRange,
}

impl NumberLimits {
    /// The refusal AWS gives for a pattern number out of these limits.
    pub(crate) fn message(&self, problem: NumberProblem) -> String {
        match problem {
            NumberProblem::TooPrecise => {
                format!("Only values upto {} decimals are supported", self.decimals)
            }
            NumberProblem::OutOfRange => format!(
                "Value must be between -{max} and {max}, inclusive",
                max = self.max_abs
            ),
        }
    }

    /// A JSON number in millionths, or why it is not comparable.
    pub(crate) fn micros(&self, n: &Number) -> Result<Micros, NumberProblem> {
        if let Some(i) = n.as_i64() {
            return if i.unsigned_abs() <= self.max_abs.unsigned_abs() {
                Ok(i * 1_000_000)
            } else {
                Err(NumberProblem::OutOfRange)
            };
        }
        if n.is_u64() {
            return Err(NumberProblem::OutOfRange);
        }
        // A float: read its shortest decimal form, the digits the JSON
        // text (or the sender) meant, not the binary approximation.
        let mut buf = [0u8; 40];
        let mut cursor = &mut buf[..];
        if write!(cursor, "{n}").is_err() {
            return Err(NumberProblem::OutOfRange);
        }
        let written = 40 - cursor.len();
        let text = std::str::from_utf8(&buf[..written]).map_err(|_| NumberProblem::OutOfRange)?;
        self.decimal_micros(text)
    }

    /// Parses `[-]digits[.digits][e[+-]digits]` exactly.
    fn decimal_micros(&self, text: &str) -> Result<Micros, NumberProblem> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (mantissa_text, exponent) = match rest.find(['e', 'E']) {
            Some(at) => {
                let e: i32 = rest[at + 1..]
                    .parse()
                    .map_err(|_| NumberProblem::OutOfRange)?;
                (&rest[..at], e)
            }
            None => (rest, 0),
        };
        let (whole, fraction) = mantissa_text.split_once('.').unwrap_or((mantissa_text, ""));
        let mut mantissa: i128 = 0;
        let mut digits = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            if !b.is_ascii_digit() {
                return Err(NumberProblem::OutOfRange);
            }
            if mantissa == 0 && b == b'0' {
                continue;
            }
            digits += 1;
            if digits > 30 {
                return Err(NumberProblem::OutOfRange);
            }
            mantissa = mantissa * 10 + i128::from(b - b'0');
        }
        // value = mantissa * 10^(exponent - fraction.len())
        let mut scale = fraction.len() as i32 - exponent;
        while scale > 0 && mantissa != 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        if mantissa == 0 {
            return Ok(0);
        }
        if scale > self.decimals as i32 {
            return Err(NumberProblem::TooPrecise);
        }
        let shift = 6 - scale;
        if shift > 30 {
            return Err(NumberProblem::OutOfRange);
        }
        let micros = mantissa
            .checked_mul(10i128.pow(shift as u32))
            .filter(|m| *m <= i128::from(self.max_abs) * 1_000_000)
            .ok_or(NumberProblem::OutOfRange)?;
        let micros = micros as i64;
        Ok(if negative { -micros } else { micros })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn micros(v: serde_json::Value) -> Result<Micros, NumberProblem> {
        let serde_json::Value::Number(n) = v else {
            panic!("not a number");
        };
        EVENTBRIDGE_LIMITS.micros(&n)
    }

    #[test]
    fn numbers_are_decimal_millionths() {
        assert_eq!(micros(json!(3)), Ok(3_000_000));
        assert_eq!(micros(json!(3.0)), Ok(3_000_000));
        assert_eq!(micros(json!(301.8)), Ok(301_800_000));
        assert_eq!(micros(json!(3.018e2)), Ok(301_800_000));
        assert_eq!(micros(json!(-0.000001)), Ok(-1));
        assert_eq!(micros(json!(0.0000001)), Err(NumberProblem::TooPrecise));
        assert_eq!(micros(json!(5_000_000_000u64)), Ok(5_000_000_000_000_000));
        assert_eq!(
            micros(json!(5_000_000_001u64)),
            Err(NumberProblem::OutOfRange)
        );
        assert_eq!(micros(json!(-5.0e9)), Ok(-5_000_000_000_000_000));
        assert_eq!(micros(json!(1e20)), Err(NumberProblem::OutOfRange));
        assert_eq!(micros(json!(u64::MAX)), Err(NumberProblem::OutOfRange));
        // Regression: 17 significant digits scaled by 10^30 overflowed i128.
        assert_eq!(
            micros(json!(1.2345678901234567e40)),
            Err(NumberProblem::OutOfRange)
        );
    }

    #[test]
    fn sns_keeps_five_decimals_within_a_billion() {
        let sns = |v: f64| SNS_LIMITS.micros(&Number::from_f64(v).expect("finite"));
        assert_eq!(sns(1.00001), Ok(1_000_010));
        assert_eq!(sns(1.000001), Err(NumberProblem::TooPrecise));
        assert_eq!(sns(1.5e9), Err(NumberProblem::OutOfRange));
    }
}
