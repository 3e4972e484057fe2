-- Input the models cannot use, with the reason and the fix; the runner appends these rows to ops.rejects.
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

final as (
    select * from spend
    union all
    select * from deals
)

select * from final
