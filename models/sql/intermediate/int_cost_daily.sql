-- Marketing cost per day and source / medium / campaign, in the home currency, from exactly one place per
-- campaign so nothing is counted twice: the spend sheet (int_spend_daily) or GA4's advertiser_ad_cost (Google Ads
-- cost imported into GA4). The tagging plan's spend_winner decides: campaign entries, then rules in order, then
-- the default.
with utms_for_ga4 as (
    select * from int_utm_normalised
),

spend_file as (
    select
        spend_date as cost_date, channel, source, medium, campaign,
        'spend_file' as cost_source, amount_home as cost
    from int_spend_daily
),

ga4_cost as (
    select
        traffic.traffic_date as cost_date,
        utms.channel, utms.source, utms.medium, utms.campaign,
        'ga4' as cost_source,
        -- the property's currency at the month's rate (rates file), else the fixed rate
        round(traffic.ad_cost::decimal(38, 2) * coalesce(monthly.rate_to_home, fx.rate_to_home), 2)::decimal(38, 2) as cost
    from stg_ga4__traffic_daily as traffic
    join utms_for_ga4 as utms
        on utms.raw_source = coalesce(traffic.raw_source, '')
        and utms.raw_medium = coalesce(traffic.raw_medium, '')
        and utms.raw_campaign = coalesce(traffic.raw_campaign, '')
        and utms.raw_term = coalesce(traffic.raw_term, '')
        and utms.raw_content = coalesce(traffic.raw_content, '')
    left join cfg_fx_rates as fx
        on fx.currency = coalesce(traffic.currency, (select value from cfg_params where name = 'home_currency'))
    left join cfg_fx_monthly_rates as monthly
        on monthly.currency = coalesce(traffic.currency, (select value from cfg_params where name = 'home_currency'))
        and monthly.month = date_trunc('month', traffic.traffic_date)
    where traffic.ad_cost <> 0
),

all_costs as (
    select * from spend_file
    union all
    select * from ga4_cost
),

combinations as (
    select distinct source, medium, campaign from all_costs
),

condition_checks as (
    select
        combinations.source, combinations.medium, combinations.campaign,
        conditions.rule_order,
        bool_and(roi_condition_holds(conditions.operator, conditions.match_values, checked.value))
            as all_conditions_hold
    from combinations
    cross join cfg_tagging_spend_winner_conditions as conditions
    cross join lateral (
        select case conditions.field
            when 'source' then combinations.source
            when 'medium' then combinations.medium
            else combinations.campaign
        end as value
    ) as checked
    group by all
),

first_matching_rule as (
    select source, medium, campaign, min(rule_order) as rule_order
    from condition_checks
    where all_conditions_hold
    group by all
),

winners as (
    select
        combinations.source,
        combinations.medium,
        combinations.campaign,
        coalesce(
            by_campaign.winner,
            rules.winner,
            (select value from cfg_tagging_plan where name = 'spend_winner_default')
        ) as winner
    from combinations
    left join cfg_tagging_spend_winner_campaigns as by_campaign on by_campaign.campaign = combinations.campaign
    left join first_matching_rule as matched
        on matched.source is not distinct from combinations.source
        and matched.medium is not distinct from combinations.medium
        and matched.campaign is not distinct from combinations.campaign
    left join cfg_tagging_spend_winner_rules as rules on rules.rule_order = matched.rule_order
),

final as (
    select
        all_costs.cost_date,
        all_costs.channel,
        all_costs.source,
        all_costs.medium,
        all_costs.campaign,
        all_costs.cost_source,
        sum(all_costs.cost)::decimal(38, 2) as cost
    from all_costs
    join winners
        on winners.source is not distinct from all_costs.source
        and winners.medium is not distinct from all_costs.medium
        and winners.campaign is not distinct from all_costs.campaign
        and winners.winner = all_costs.cost_source
    group by all
)

select * from final
