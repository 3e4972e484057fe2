-- Marketing cost per day and source / medium / campaign, in the home currency, from exactly one place per
-- campaign and day so nothing is counted twice: the spend sheet (int_spend_daily) or GA4's advertiser_ad_cost
-- (Google Ads cost in GA4). The tagging plan's spend_winner decides: campaign entries, then rules in order, then
-- the default. On a day GA4 served its traffic but no cost report (a property without a Google Ads link, cost
-- reading turned off), the spend sheet covers the campaigns whose winner is GA4. Days GA4 has not served yet
-- (today, the rest of the month) wait for it, as before.
with utms_for_ga4 as (
    select * from int_utm_normalised
),

ga4_cost_gaps as (
    select report_date as cost_date
    from stg_ga4__report_days
    group by all
    having bool_or(report = 'traffic_daily') and not bool_or(report = 'ad_cost_daily')
),

spend_file as (
    select
        spend_date as cost_date, channel, source, medium, campaign,
        'spend_file' as cost_source, amount_home as cost
    from int_spend_daily
),

ga4_cost as (
    select
        ads.cost_date,
        utms.channel, utms.source, utms.medium, utms.campaign,
        'ga4' as cost_source,
        -- the property's currency at the month's rate (rates file), else the fixed rate
        round(ads.ad_cost::decimal(38, 2) * coalesce(monthly.rate_to_home, fx.rate_to_home), 2)::decimal(38, 2)
            as cost
    from stg_ga4__ad_cost_daily as ads
    join utms_for_ga4 as utms
        on utms.raw_source = coalesce(ads.raw_source, '')
        and utms.raw_medium = coalesce(ads.raw_medium, '')
        and utms.raw_campaign = coalesce(ads.raw_campaign, '')
        and utms.raw_term = ''
        and utms.raw_content = ''
    left join cfg_fx_rates as fx
        on fx.currency = coalesce(ads.currency, (select value from cfg_params where name = 'home_currency'))
    left join cfg_fx_monthly_rates as monthly
        on monthly.currency = coalesce(ads.currency, (select value from cfg_params where name = 'home_currency'))
        and monthly.month = date_trunc('month', ads.cost_date)
    where ads.ad_cost <> 0
      -- a currency without a rate for the month: listed in ops.rejects (int_model_rejects), not counted
      and coalesce(monthly.rate_to_home, fx.rate_to_home) is not null
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
    left join ga4_cost_gaps on ga4_cost_gaps.cost_date = all_costs.cost_date
    where winners.winner = all_costs.cost_source
        or (
            winners.winner = 'ga4'
            and all_costs.cost_source = 'spend_file'
            and ga4_cost_gaps.cost_date is not null
        )
    group by all
)

select * from final
