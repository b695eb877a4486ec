// Typed entries the attribute accepts; run as a binary, it calls each one.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Circle { radius: u32 },
    Square(u32),
}

#[reexec::entry("typed-area")]
fn area(shape: Shape) -> Result<u64, String> {
    match shape {
        Shape::Circle { radius } => Ok(3 * u64::from(radius) * u64::from(radius)),
        Shape::Square(0) => Err("an empty square".to_owned()),
        Shape::Square(side) => Ok(u64::from(side) * u64::from(side)),
    }
}

/// Registered under its own name; returns nothing but still answers.
#[reexec::entry]
pub fn typed_unit(_: ()) {}

/// A destructuring pattern, a map, an owned `'static` borrow.
#[reexec::entry("typed-tuple")]
pub(crate) fn tuple((name, count): (String, u32)) -> BTreeMap<String, std::borrow::Cow<'static, str>> {
    BTreeMap::from([(name, "x".repeat(count as usize).into())])
}

mod inner {
    /// A handle in another module is named by its path.
    #[reexec::entry("typed-inner")]
    pub fn doubled(value: i64) -> i64 {
        value * 2
    }
}

reexec::main! {
    fn main() -> Result<(), reexec::Error> {
        assert_eq!(reexec::call::<area>(&Shape::Square(3))?, Ok(9));
        assert_eq!(
            reexec::call::<area>(&Shape::Square(0))?,
            Err("an empty square".to_owned())
        );
        assert_eq!(reexec::call::<area>(&Shape::Circle { radius: 2 })?, Ok(12));
        reexec::call::<typed_unit>(&())?;
        let map = reexec::call::<tuple>(&("k".to_owned(), 3))?;
        assert_eq!(map["k"], "xxx");
        assert_eq!(reexec::call::<inner::doubled>(&21)?, 42);
        assert_eq!(<inner::doubled as reexec::TypedEntry>::NAME, "typed-inner");
        Ok(())
    }
}
