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
        reject_reason as reason
    from stg_spend__marketing_spend
    where reject_reason is not null
),

won_deals_without_amount as (
    select
        'models:hubspot_deals' as source,
        deal_id::varchar as record_id,
        null::integer as line,
        'amount' as field,
        null::varchar as value,
        'won deal without amount or amount_in_home_currency: counted as 0 revenue; fill in the deal amount'
            as reason
    from int_deals
    where is_won and amount_home is null
),

final as (
    select * from spend
    union all
    select * from won_deals_without_amount
)

select * from final
