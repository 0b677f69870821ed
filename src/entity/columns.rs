//! Domain enums as text columns: each is stored as its `as_str()` and read back with `FromStr`, so entities use
//! the domain's own types and no service parses strings by hand. (The domain stays free of SeaORM; the traits are
//! implemented here.)

use crate::domain::{ListStatus, ListType, Optin, SubscriberStatus, SubscriptionStatus};

macro_rules! text_column {
    ($ty:ty) => {
        impl From<$ty> for sea_orm::Value {
            fn from(value: $ty) -> Self {
                value.as_str().into()
            }
        }

        impl sea_orm::TryGetable for $ty {
            fn try_get_by<I: sea_orm::ColIdx>(
                res: &sea_orm::QueryResult,
                index: I,
            ) -> Result<Self, sea_orm::TryGetError> {
                let text = String::try_get_by(res, index)?;
                text.parse().map_err(|err: String| {
                    sea_orm::TryGetError::DbErr(sea_orm::DbErr::Type(format!(
                        "{}: {err}",
                        stringify!($ty)
                    )))
                })
            }
        }

        impl sea_orm::sea_query::ValueType for $ty {
            fn try_from(value: sea_orm::Value) -> Result<Self, sea_orm::sea_query::ValueTypeErr> {
                let text = <String as sea_orm::sea_query::ValueType>::try_from(value)?;
                text.parse().map_err(|_| sea_orm::sea_query::ValueTypeErr)
            }

            fn type_name() -> String {
                stringify!($ty).to_owned()
            }

            fn array_type() -> sea_orm::sea_query::ArrayType {
                sea_orm::sea_query::ArrayType::String
            }

            fn column_type() -> sea_orm::sea_query::ColumnType {
                sea_orm::sea_query::ColumnType::String(sea_orm::sea_query::StringLen::None)
            }
        }

        impl sea_orm::sea_query::Nullable for $ty {
            fn null() -> sea_orm::Value {
                sea_orm::Value::String(None)
            }
        }

        impl sea_orm::IntoActiveValue<$ty> for $ty {
            fn into_active_value(self) -> sea_orm::ActiveValue<$ty> {
                sea_orm::ActiveValue::Set(self)
            }
        }
    };
}

text_column!(ListType);
text_column!(Optin);
text_column!(ListStatus);
text_column!(SubscriberStatus);
text_column!(SubscriptionStatus);
