-- Failing rows: a deal missing from an attribution model (open and lost deals included: weighted pipeline needs them).
with attribution_models as (
    select distinct attribution_model from attribution_credits
),

final as (
    select attribution_models.attribution_model, int_deals.deal_id
    from int_deals
    cross join attribution_models
    anti join attribution_credits as credits
        on credits.attribution_model = attribution_models.attribution_model
        and credits.deal_id = int_deals.deal_id
)

select * from final
