-- Each included portal's ROI rows (the three grains of its int_roi_rollup, read from its roi_by_* marts) in the
-- group currency. Monthly rows convert at their month's rate. All-time rows (month NULL) are kept as they are when the
-- portal's home currency is the group's; otherwise their money is the sum of the converted months, so the month rates
-- apply and an all-time figure equals its months. Counts and won_deals never convert.
with roi as (
    select roi.*
    from stg_portals__roi as roi
    join stg_portals__portals as portals on portals.portal = roi.portal and portals.included
),

rates as (
    select * from int_portal_month_rates
),

monthly as (
    select
        roi.* replace (
            roi_div_money(roi.cost * rates.numerator, rates.denominator) as cost,
            roi_div_money(roi.revenue * rates.numerator, rates.denominator) as revenue,
            roi_div_money(roi.gross_margin * rates.numerator, rates.denominator) as gross_margin,
            roi_div_money(roi.weighted_pipeline * rates.numerator, rates.denominator) as weighted_pipeline
        ),
        rates.rate_source = 'same_currency' as same_currency
    from roi
    join rates on rates.portal = roi.portal and rates.month = roi.month
),

converted_months as (
    -- per all-time key: the sum of its converted months (a NULL margin month keeps the margin NULL)
    select
        portal, grain, attribution_model, channel, source, medium, campaign,
        sum(cost) as cost,
        sum(revenue) as revenue,
        case when count(*) = count(gross_margin) then sum(gross_margin) end as gross_margin,
        sum(weighted_pipeline) as weighted_pipeline,
        bool_and(same_currency) as same_currency
    from monthly
    group by all
),

all_time as (
    select
        roi.* replace (
            case when coalesce(months.same_currency, true) then roi.cost else months.cost end as cost,
            case when coalesce(months.same_currency, true) then roi.revenue else months.revenue end as revenue,
            case when coalesce(months.same_currency, true) then roi.gross_margin else months.gross_margin end
                as gross_margin,
            case when coalesce(months.same_currency, true) then roi.weighted_pipeline else months.weighted_pipeline end
                as weighted_pipeline
        )
    from roi
    left join converted_months as months
        on months.portal = roi.portal
        and months.grain = roi.grain
        and months.attribution_model = roi.attribution_model
        and months.channel is not distinct from roi.channel
        and months.source is not distinct from roi.source
        and months.medium is not distinct from roi.medium
        and months.campaign is not distinct from roi.campaign
    where roi.month is null
),

final as (
    select * exclude (same_currency) from monthly
    union all by name
    select * from all_time
)

select * from final
