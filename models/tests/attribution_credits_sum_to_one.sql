-- Failing rows: a deal whose credits under some attribution model do not add up to 1.
with totals as (
    select attribution_model, deal_id, sum(credit) as total_credit
    from attribution_credits
    group by attribution_model, deal_id
),

final as (
    select *
    from totals
    where abs(total_credit - 1) > 1e-9
)

select * from final
