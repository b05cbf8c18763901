//! What an order costs. One credit per video today; the unit price is stored with each
//! order so a later price change never alters what an old order refunds.

/// Credits one video costs.
pub const CREDITS_PER_VIDEO: i64 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PricingError {
    #[error("an order needs at least one video, got {0}")]
    NoVideos(i64),
    #[error("a unit price must be positive, got {0}")]
    NonPositivePrice(i64),
    #[error("an order of {count} videos at {unit_price} credits is too large")]
    Overflow { count: i64, unit_price: i64 },
}

/// The total debit of an order of `count` videos at `unit_price` credits each.
pub fn order_cost(count: i64, unit_price: i64) -> Result<i64, PricingError> {
    if count < 1 {
        return Err(PricingError::NoVideos(count));
    }
    if unit_price < 1 {
        return Err(PricingError::NonPositivePrice(unit_price));
    }
    count
        .checked_mul(unit_price)
        .ok_or(PricingError::Overflow { count, unit_price })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_costs_its_count_times_the_unit_price() {
        assert_eq!(order_cost(1, CREDITS_PER_VIDEO), Ok(1));
        assert_eq!(order_cost(5, 2), Ok(10));
    }

    #[test]
    fn empty_free_or_absurd_orders_are_refused() {
        assert_eq!(order_cost(0, 1), Err(PricingError::NoVideos(0)));
        assert_eq!(order_cost(-3, 1), Err(PricingError::NoVideos(-3)));
        assert_eq!(order_cost(1, 0), Err(PricingError::NonPositivePrice(0)));
        assert!(matches!(
            order_cost(i64::MAX, 2),
            Err(PricingError::Overflow { .. })
        ));
    }
}
