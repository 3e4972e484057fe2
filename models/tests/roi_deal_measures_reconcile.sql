-- Every all-time ROI mart row's won deals, revenue and gross margin equal the attribution credits of its
-- dimensions, recomputed here straight from attribution_credits and int_deals: to the cent, with a NULL margin
-- exactly where a credited won deal has no margin information.
with won_credits as (
    select
        credits.attribution_model, credits.channel, credits.source, credits.medium, credits.campaign,
        credits.credit, credits.revenue, credits.gross_margin,
        deals.margin_source = 'none' and credits.credit > 0 as margin_unknown
    from attribution_credits as credits
    join int_deals as deals on deals.deal_id = credits.deal_id
    where deals.is_won
),

expected as (
    select
        case when grouping(source) = 1 then 'roi_by_channel'
             when grouping(campaign) = 1 then 'roi_by_source'
             else 'roi_by_campaign' end as mart,
        attribution_model, channel, source, medium, campaign,
        sum(revenue) as revenue,
        case when bool_or(margin_unknown) then null else sum(gross_margin) end as gross_margin,
        sum(credit) as won_deals
    from won_credits
    group by grouping sets (
        (attribution_model, channel),
        (attribution_model, channel, source),
        (attribution_model, channel, source, medium, campaign)
    )
),

marts as (
    select 'roi_by_channel' as mart, attribution_model, channel, null as source, null as medium,
        null as campaign, revenue, gross_margin, won_deals
    from roi_by_channel where month is null
    union all
    select 'roi_by_source', attribution_model, channel, source, null, null, revenue, gross_margin, won_deals
    from roi_by_source where month is null
    union all
    select 'roi_by_campaign', attribution_model, channel, source, medium, campaign, revenue, gross_margin,
        won_deals
    from roi_by_campaign where month is null
),

compared as (
    select
        coalesce(marts.mart, expected.mart) as mart,
        coalesce(marts.attribution_model, expected.attribution_model) as attribution_model,
        coalesce(marts.channel, expected.channel) as channel,
        coalesce(marts.source, expected.source) as source,
        coalesce(marts.medium, expected.medium) as medium,
        coalesce(marts.campaign, expected.campaign) as campaign,
        marts.revenue, expected.revenue as expected_revenue,
        marts.gross_margin, expected.gross_margin as expected_gross_margin,
        marts.won_deals, expected.won_deals as expected_won_deals,
        marts.mart is null as missing_from_mart
    from marts
    full join expected
        on expected.mart = marts.mart
        and expected.attribution_model = marts.attribution_model
        and expected.channel = marts.channel
        and expected.source is not distinct from marts.source
        and expected.medium is not distinct from marts.medium
        and expected.campaign is not distinct from marts.campaign
)

select *
from compared
where missing_from_mart
   or revenue <> coalesce(expected_revenue, 0)
   -- rows without any won credit have margin 0; rows with credits carry the recomputed margin (or NULL)
   or (expected_revenue is null and gross_margin is distinct from 0)
   or (expected_revenue is not null and gross_margin is distinct from expected_gross_margin)
   -- won_deals sums DOUBLE credits in another order: equal up to rounding of the sum
   or abs(won_deals - coalesce(expected_won_deals, 0)) > 1e-9 * greatest(1, abs(coalesce(expected_won_deals, 0)))
