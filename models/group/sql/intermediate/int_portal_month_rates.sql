-- How each included portal's money becomes group money, per month that appears in its ROI marts:
--   amount_in_group_currency = amount x numerator / denominator (rounded to the cent, half away from zero)
-- The portal's own settings first, as its models used them: its monthly rate for the group currency (fx_rates_file),
-- then its fixed rate ([models] fx_rates); both are home-currency units for 1 group-currency unit, so they divide.
-- Then [group] fx_rates (group-currency units for 1 unit of the portal's home currency), which multiplies.
-- NULL numerator: no rate anywhere (models/group.py refuses the build and names the line to add).
with portals as (
    select * from stg_portals__portals
    where included
),

group_params as (
    select currency as group_currency from cfg_group_params
),

months as (
    select distinct portal, month
    from stg_portals__roi
    where month is not null
),

monthly_rates as (
    select portal, month, rate_to_home from stg_portals__rates
    where month is not null
),

fixed_rates as (
    select portal, rate_to_home from stg_portals__rates
    where month is null
),

group_rates as (
    select currency, rate_to_group from cfg_group_fx_rates
),

final as (
    select
        months.portal,
        months.month,
        portals.home_currency,
        group_params.group_currency,
        case
            when portals.home_currency = group_params.group_currency then 'same_currency'
            when monthly_rates.rate_to_home is not null then 'portal_monthly_rate'
            when fixed_rates.rate_to_home is not null then 'portal_fx_rate'
            when group_rates.rate_to_group is not null then 'group_fx_rate'
        end as rate_source,
        case
            when portals.home_currency = group_params.group_currency then 1
            when coalesce(monthly_rates.rate_to_home, fixed_rates.rate_to_home) is not null then 1
            else group_rates.rate_to_group
        end::decimal(18, 8) as numerator,
        case
            when portals.home_currency = group_params.group_currency then 1
            when coalesce(monthly_rates.rate_to_home, fixed_rates.rate_to_home) is not null
                then coalesce(monthly_rates.rate_to_home, fixed_rates.rate_to_home)
            when group_rates.rate_to_group is not null then 1
        end::decimal(18, 8) as denominator
    from months
    join portals on portals.portal = months.portal
    cross join group_params
    left join monthly_rates on monthly_rates.portal = months.portal and monthly_rates.month = months.month
    left join fixed_rates on fixed_rates.portal = months.portal
    left join group_rates on group_rates.currency = portals.home_currency
)

select * from final
