-- Refunds never exceed what was paid.
select order_id, amount from {{ ref('orders') }} where amount < 0
