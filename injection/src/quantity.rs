//! Kubernetes resource quantities (`100m`, `0.1`, `1Gi`, `1024Mi`, `1e3`), compared as numbers.

/// A quantity as an exact number of nano-units (10⁻⁹), which every suffix Kubernetes accepts
/// is a whole multiple of; finer fractions round up, as the API server rounds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i128);

impl Quantity {
    /// Parses `<sign><digits>[.<digits>]<suffix>`: a binary (`Ki`…`Ei`), decimal (`n u m k M G T
    /// P E`) or exponent (`e3`, `E-2`) suffix, or none.
    pub fn parse(text: &str) -> Result<Quantity, String> {
        let bad = || format!("{text:?} is not a quantity such as 100m, 0.5 or 1Gi");
        let trimmed = text.trim();
        let (negative, rest) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(bad());
        }
        let (mul, div, exp10) = suffix_scale(suffix).ok_or_else(bad)?;
        // value = number × mul / div × 10^exp10, in nano-units.
        let digits: String = format!("{whole}{fraction}");
        let mantissa: i128 = digits.parse().map_err(|_| bad())?;
        let exponent = exp10 + 9 - fraction.len() as i32;
        let scaled =
            scale(mantissa.checked_mul(mul).ok_or_else(bad)?, exponent, div).ok_or_else(bad)?;
        Ok(Quantity(if negative { -scaled } else { scaled }))
    }

    pub fn nanos(self) -> i128 {
        self.0
    }
}

/// `value × 10^exponent / div`, rounded up.
fn scale(value: i128, exponent: i32, div: i128) -> Option<i128> {
    let mut value = value;
    let mut div = div;
    if exponent >= 0 {
        value = value.checked_mul(10i128.checked_pow(exponent as u32)?)?;
    } else {
        div = div.checked_mul(10i128.checked_pow(exponent.unsigned_abs())?)?;
    }
    Some(value.checked_add(div - 1)? / div)
}

/// (multiplier, divisor, power of ten) of a suffix.
fn suffix_scale(suffix: &str) -> Option<(i128, i128, i32)> {
    let binary = |power: u32| Some((1i128 << power, 1, 0));
    let decimal = |exp: i32| Some((1, 1, exp));
    match suffix {
        "" => decimal(0),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        exp if exp.starts_with(['e', 'E']) => {
            let power: i32 = exp[1..].parse().ok()?;
            (power.abs() <= 30).then_some((1, 1, power))
        }
        _ => None,
    }
}

/// Whether two quantities are the same amount; text that is no quantity is compared as text.
pub fn same(a: &str, b: &str) -> bool {
    match (Quantity::parse(a), Quantity::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.trim() == b.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_amounts_in_any_notation_are_the_same() {
        let same_rows = [
            ("100m", "0.1"),
            ("1Gi", "1024Mi"),
            ("1", "1000m"),
            ("1k", "1000"),
            ("1e3", "1k"),
            ("0.5Gi", "512Mi"),
            ("2", "2.0"),
            ("1Mi", "1048576"),
            ("129e6", "129M"),
            ("1.5", "1500m"),
            ("10m", "10000000n"),
            ("1E-3", "1m"),
            ("+1", "1"),
        ];
        for (a, b) in same_rows {
            assert!(same(a, b), "{a} = {b}");
        }
        let different = [
            ("100m", "0.2"),
            ("1Gi", "1G"),
            ("1Mi", "1M"),
            ("2", "1"),
            ("-1", "1"),
        ];
        for (a, b) in different {
            assert!(!same(a, b), "{a} ≠ {b}");
        }
    }

    #[test]
    fn what_is_no_quantity_is_refused_or_compared_as_text() {
        // The largest nano-unit amount is read; beyond it refused, never overflowed.
        let largest = "170141183460469231731687303715884105727n";
        assert_eq!(Quantity::parse(largest).unwrap().nanos(), i128::MAX);
        // Rounding it up would pass the largest: refused.
        assert!(Quantity::parse("17014118346046923173168730371588410572.7n").is_err());
        for bad in [
            "",
            "m",
            "1x",
            "1.2.3",
            "Gi",
            "1e",
            "--1",
            "1e40",
            "170141183460469231731687303715884105728n",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?}");
        }
        assert!(same("lots", "lots"));
        assert!(!same("lots", "1"));
        // Finer than a nano-unit rounds up, as the API server does.
        assert_eq!(Quantity::parse("0.0000000001").unwrap().nanos(), 1);
    }
}
