-- Failing rows: a deal whose attributed revenue or gross margin under some model differs from the deal's own amount
-- (credits are rounded to the cent with the remainder on the largest credit, so the sums must match exactly).
with totals as (
    select attribution_model, deal_id, sum(revenue) as revenue, sum(gross_margin) as gross_margin
    from attribution_credits
    group by attribution_model, deal_id
),

final as (
    select totals.*, int_deals.won_revenue, int_deals.gross_margin as deal_gross_margin
    from totals
    join int_deals on int_deals.deal_id = totals.deal_id
    where totals.revenue is distinct from int_deals.won_revenue
        or totals.gross_margin is distinct from int_deals.gross_margin
)

select * from final
