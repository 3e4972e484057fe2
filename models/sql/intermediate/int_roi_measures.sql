-- Additive ROI measures at the finest grain the marts need: attribution model x reporting month x channel x
-- source x medium x campaign. Cost, sessions and lifecycle counts are the same under every model; deal measures
-- come from attribution_credits. Months are calendar months in the reporting time zone:
--   cost          the day the money was spent (spend spread over its period, or GA4's cost date)
--   sessions      the GA4 date
--   leads ... customers  the date the contact reached the stage
--   deal credits  the credited touch's time; deals without touches ('unattributed') the close date, else creation
with params as (
    select
        max(value) filter (where name = 'reporting_time_zone') as time_zone,
        try_cast(max(value) filter (where name = 'as_of') as date) as as_of
    from cfg_params
),

models as (
    -- every model, so a warehouse without a single deal still reports cost and sessions under each
    select attribution_model from attribution_models
),

credits as (
    select
        credits.attribution_model,
        date_trunc('month', timezone(params.time_zone, coalesce(credits.touchpoint_at, deals.closed_at, deals.created_at)))::date
            as month,
        credits.channel, credits.source, credits.medium, credits.campaign,
        sum(case when deals.is_won then credits.credit else 0 end) as won_deals,
        sum(case when deals.is_won then credits.revenue else 0 end) as revenue,
        -- margin: the known part, and the credit of won deals whose margin is unknown (the rollup then shows NULL)
        sum(case when deals.is_won then credits.gross_margin end) as known_gross_margin,
        sum(case when deals.is_won and deals.margin_source = 'none' then credits.credit else 0 end)
            as won_deals_without_margin,
        sum(case when deals.is_won and deals.margin_source = 'line_items' then credits.credit else 0 end)
            as won_deals_margin_from_line_items,
        sum(case when deals.is_won and deals.margin_source = 'margin_rate' then credits.credit else 0 end)
            as won_deals_margin_from_rate,
        sum(credits.credit::decimal(38, 12) * deals.weighted_amount) as weighted_pipeline
    from attribution_credits as credits
    join int_deals as deals on deals.deal_id = credits.deal_id
    cross join params
    group by all
),

costs as (
    select
        date_trunc('month', cost_date)::date as month,
        channel, source, medium, campaign,
        sum(cost) as cost
    from int_cost_daily
    group by all
),

sessions as (
    select
        date_trunc('month', traffic.traffic_date)::date as month,
        utms.channel, utms.source, utms.medium, utms.campaign,
        sum(traffic.sessions) as sessions
    from stg_ga4__traffic_daily as traffic
    join int_utm_normalised as utms
        on utms.raw_source = coalesce(traffic.raw_source, '')
        and utms.raw_medium = coalesce(traffic.raw_medium, '')
        and utms.raw_campaign = coalesce(traffic.raw_campaign, '')
        and utms.raw_term = coalesce(traffic.raw_term, '')
        and utms.raw_content = coalesce(traffic.raw_content, '')
    group by all
),

lifecycle_events as (
    select channel, source, medium, campaign, became_lead_at as at, 'lead' as stage from int_lead_touches
    union all
    select channel, source, medium, campaign, became_mql_at, 'mql' from int_lead_touches
    union all
    select channel, source, medium, campaign, became_sql_at, 'sql' from int_lead_touches
    union all
    select channel, source, medium, campaign, became_customer_at, 'customer' from int_lead_touches
),

lifecycle as (
    select
        date_trunc('month', timezone(params.time_zone, events.at))::date as month,
        events.channel, events.source, events.medium, events.campaign,
        count(*) filter (where events.stage = 'lead') as leads,
        count(*) filter (where events.stage = 'mql') as mqls,
        count(*) filter (where events.stage = 'sql') as sqls,
        count(*) filter (where events.stage = 'customer') as customers
    from lifecycle_events as events
    cross join params
    where events.at is not null
    group by all
),

model_independent as (
    select month, channel, source, medium, campaign, cost, null::hugeint as sessions,
        null::bigint as leads, null::bigint as mqls, null::bigint as sqls, null::bigint as customers
    from costs
    union all by name
    select month, channel, source, medium, campaign, sessions from sessions
    union all by name
    select month, channel, source, medium, campaign, leads, mqls, sqls, customers from lifecycle
),

final as (
    select
        models.attribution_model,
        month, channel, source, medium, campaign,
        cost::decimal(38, 2) as cost,
        sessions::bigint as sessions,
        leads, mqls, sqls, customers,
        null::double as won_deals,
        null::decimal(38, 2) as revenue,
        null::decimal(38, 2) as known_gross_margin,
        null::double as won_deals_without_margin,
        null::double as won_deals_margin_from_line_items,
        null::double as won_deals_margin_from_rate,
        null::decimal(38, 12) as weighted_pipeline
    from model_independent
    cross join models
    union all by name
    select
        attribution_model, month, channel, source, medium, campaign,
        won_deals,
        revenue::decimal(38, 2) as revenue,
        known_gross_margin::decimal(38, 2) as known_gross_margin,
        won_deals_without_margin,
        won_deals_margin_from_line_items,
        won_deals_margin_from_rate,
        weighted_pipeline::decimal(38, 12) as weighted_pipeline
    from credits
)

select * from final
