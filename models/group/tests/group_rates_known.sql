-- Every month of every included portal has a way into the group currency.
select portal, month, home_currency, group_currency
from int_portal_month_rates
where numerator is null or denominator is null
