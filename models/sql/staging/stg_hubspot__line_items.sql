-- HubSpot line items: what was sold, at which price and unit cost (hs_cost_of_goods_sold), in the item currency.
with source as (
    select * from raw.hubspot_line_items
),

final as (
    select
        id as line_item_id,
        name as product_name,
        hs_sku as sku,
        price as unit_price,
        quantity,
        amount,
        hs_cost_of_goods_sold as unit_cost,
        upper(trim(hs_line_item_currency_code)) as currency,
        createdate as created_at
    from source
    where not coalesce(archived, false)
)

select * from final
