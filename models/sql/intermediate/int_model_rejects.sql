-- Input the models cannot use, with the reason and the fix; the runner appends these rows to ops.rejects:
-- spend rows, deals (negative, won without amount, no rate) and GA4 ad cost in a currency without a rate.
-- The build goes on without them.
with spend as (
    select
        'models:marketing_spend' as source,
        file_name as record_id,
        line,
        case
            when reject_reason like 'amount%' or reject_reason like 'negative%' then 'amount'
            when reject_reason like 'no exchange rate%' then 'currency'
            when reject_reason like 'campaign%' then 'campaign'
            else 'period'
        end as field,
        case
            when reject_reason like 'no exchange rate%' then currency
            when reject_reason like 'campaign%' then raw_campaign
            when reject_reason like 'amount%' or reject_reason like 'negative%' then amount::varchar
            else period_start::varchar || '..' || period_end::varchar
        end as value,
        'Spend file ' || file_name || ' line ' || line::varchar || ': ' || reject_reason as reason
    from stg_spend__marketing_spend
    where reject_reason is not null
),

deals as (
    -- negative amounts, won deals without amount, amounts in a currency without a rate: counted nowhere
    select
        'models:hubspot_deals' as source,
        deal_id::varchar as record_id,
        null::integer as line,
        reject_field as field,
        case when reject_field = 'deal_currency_code' then currency else amount::varchar end as value,
        'Deal ' || deal_id::varchar || ': ' || reject_reason as reason
    from int_deal_amounts
    where reject_reason is not null
),

params as (
    select
        upper(max(value) filter (where name = 'home_currency')) as home_currency,
        max(value) filter (where name = 'fx_rates_file') as fx_rates_file
    from cfg_params
),

ga4_cost_without_rate as (
    -- Google Ads cost GA4 reports in a currency that has no rate for the month: it cannot be counted (one row per
    -- property, currency and month, with the line to add)
    select
        ads.property_id,
        coalesce(ads.currency, params.home_currency) as currency,
        date_trunc('month', ads.cost_date)::date as month,
        count(*) as cost_rows,
        sum(ads.ad_cost) as ad_cost,
        any_value(params.home_currency) as home_currency,
        any_value(params.fx_rates_file) as fx_rates_file
    from stg_ga4__ad_cost_daily as ads
    cross join params
    left join cfg_fx_rates as fixed on fixed.currency = coalesce(ads.currency, params.home_currency)
    left join cfg_fx_monthly_rates as monthly
        on monthly.currency = coalesce(ads.currency, params.home_currency)
        and monthly.month = date_trunc('month', ads.cost_date)
    where ads.ad_cost <> 0 and fixed.rate_to_home is null and monthly.rate_to_home is null
    group by all
),

ga4_cost as (
    select
        'models:ga4_ad_cost' as source,
        property_id || ' ' || strftime(month, '%Y-%m') as record_id,
        null::integer as line,
        'currency_code' as field,
        currency as value,
        'GA4 property ' || property_id || ': ' || ad_cost::varchar || ' ' || currency || ' of Google Ads cost ('
            || cost_rows::varchar || ' rows) not counted: '
            || roi_fx_rate_missing_reason(currency, month, home_currency, fx_rates_file) as reason
    from ga4_cost_without_rate
),

final as (
    select * from spend
    union all
    select * from deals
    union all
    select * from ga4_cost
)

select * from final
