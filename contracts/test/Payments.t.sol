// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {Guarded} from "../src/Roles.sol";
import {ArthaMerkle} from "../src/ArthaMerkle.sol";
import {NodeCertRegistry} from "../src/NodeCertRegistry.sol";
import {DealMarket} from "../src/DealMarket.sol";
import {AIJobManager} from "../src/AIJobManager.sol";
import {ProofOfCompute} from "../src/ProofOfCompute.sol";

/// @notice An account that is a contract: it acts through `exec` and
/// receives value as its mode says.
contract Party {
    enum Mode {
        Accept,
        Reject,
        BurnGas,
        Reenter,
        Probe
    }

    Mode public mode;
    address public reenterTarget;
    bytes public probeError;

    function setMode(Mode m, address target) external {
        mode = m;
        reenterTarget = target;
    }

    /// Calls `target`, sending `value` of this account's own balance.
    function exec(address target, uint256 value, bytes calldata data) public payable returns (bytes memory out) {
        bool ok;
        (ok, out) = target.call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(out, 32), mload(out))
            }
        }
    }

    function exec(address target, bytes calldata data) external returns (bytes memory) {
        return exec(target, 0, data);
    }

    receive() external payable {
        if (mode == Mode.Reject) revert("no thanks");
        if (mode == Mode.BurnGas) {
            while (true) {}
        }
        if (mode == Mode.Reenter) {
            // Tries to pull again while being paid; the guard refuses, and
            // the refusal propagates so the push fails.
            Guarded(reenterTarget).withdrawOwed();
        }
        if (mode == Mode.Probe) {
            // Tries to re-enter, records why it failed, accepts the payment.
            (bool ok, bytes memory err) = reenterTarget.call(abi.encodeCall(Guarded.withdrawOwed, ()));
            if (!ok) probeError = err;
        }
    }
}

/// @notice Value is never created, lost or held hostage: settlement goes
/// through whatever the recipients do, and every wei is accounted for.
contract PaymentsTest is Fixture {
    bytes32 constant JOB = bytes32(uint256(0x4a4f42) << 128);
    bytes32 constant NODE2 = bytes32(uint256(0x4e32) << 128);
    uint64 constant MAX = 4_710;
    uint256 constant BUDGET = 10 ether;

    Party internal op2;
    Party internal sub2;

    function setUp() public override {
        super.setUp();
        op2 = new Party();
        sub2 = new Party();
        vm.deal(address(op2), 10 ether);
        vm.deal(address(sub2), 100_000 ether);
        op2.exec(
            address(registry),
            MIN_STAKE,
            abi.encodeCall(NodeCertRegistry.register, (NODE2, 1, 1, uint64(PRICE), "x", bytes32(0)))
        );
        vm.prank(attestor);
        registry.certify(NODE2);
    }

    function submitAs(Party who, bytes32 jobId, uint64 maxSteps, uint256 budget) internal {
        who.exec(address(manager), budget, abi.encodeCall(AIJobManager.submitJob, (jobId, SPEC, maxSteps, PRICE)));
    }

    /// Commits the three-step tree (windows of two).
    function commitAs(Party who, bytes32 jobId, bytes32 root) internal {
        who.exec(address(poc), abi.encodeCall(ProofOfCompute.commit, (jobId, root, 2, 2, 3, bytes32(0), bytes32("m"))));
    }

    /// Commits `steps` steps in windows of 1000 under an arbitrary root.
    function commitStepsAs(Party who, bytes32 jobId, uint64 steps) internal {
        uint32 windows = uint32((steps + 999) / 1000);
        who.exec(
            address(poc),
            abi.encodeCall(ProofOfCompute.commit, (jobId, bytes32("r"), 1000, windows, steps, bytes32(0), bytes32("m")))
        );
    }

    /// Past the challenge period and the audit seed's block.
    function afterPeriod() internal {
        vm.warp(block.timestamp + PERIOD);
        vm.roll(block.number + 2);
    }

    function claimForStep2(bytes memory replayed) internal pure returns (ProofOfCompute.StepClaim memory c) {
        (bytes[] memory recs, bytes32 w0, bytes32 w1,) = threeStepTree();
        bytes32[] memory wp = new bytes32[](1);
        wp[0] = w1;
        bytes32[] memory sp = new bytes32[](1);
        sp[0] = ArthaMerkle.leafHash(recs[0]);
        c = ProofOfCompute.StepClaim(0, w0, wp, 1, recs[1], sp, replayed);
    }

    // ------------------------------------------------ hostile recipients

    function testRefusingOperatorCannotBlockSettlement() public {
        submit(JOB, MAX, BUDGET);
        vm.prank(scheduler);
        manager.assign(JOB, NODE2);
        commitStepsAs(op2, JOB, 1_000);
        op2.setMode(Party.Mode.Reject, address(0));
        afterPeriod();
        uint256 sub = submitter.balance;
        vm.expectEmit(true, false, false, true, address(market));
        emit Guarded.PaymentDeferred(address(op2), 1 ether);
        poc.finalize(JOB);
        assertEq(submitter.balance - sub, BUDGET - 1 ether, "the submitter's refund went through");
        assertEq(market.owed(address(op2)), 1 ether, "the payout is credited");
        assertEq(address(market).balance, 1 ether, "and held for the operator");
        // Pulling while still refusing reverts; nothing changes.
        vm.expectRevert(abi.encodeWithSelector(Guarded.TransferFailed.selector, address(op2), 1 ether));
        op2.exec(address(market), abi.encodeCall(Guarded.withdrawOwed, ()));
        op2.setMode(Party.Mode.Accept, address(0));
        uint256 before = address(op2).balance;
        op2.exec(address(market), abi.encodeCall(Guarded.withdrawOwed, ()));
        assertEq(address(op2).balance - before, 1 ether, "pulled");
        assertEq(address(market).balance, 0, "market empty");
        vm.expectRevert(abi.encodeWithSelector(Guarded.NothingOwed.selector, address(op2)));
        op2.exec(address(market), abi.encodeCall(Guarded.withdrawOwed, ()));
    }

    function testGasBurningSubmitterCannotBlockSettlement() public {
        (,,, bytes32 root) = threeStepTree();
        submitAs(sub2, JOB, MAX, BUDGET);
        vm.prank(scheduler);
        manager.assign(JOB, NODE);
        vm.prank(operator);
        poc.commit(JOB, root, 1000, 1, 1_000, bytes32(0), bytes32("m"));
        sub2.setMode(Party.Mode.BurnGas, address(0));
        afterPeriod();
        uint256 op = operator.balance;
        poc.finalize(JOB);
        assertEq(operator.balance - op, 1 ether, "the node was paid");
        assertEq(market.owed(address(sub2)), BUDGET - 1 ether, "the refund is credited");
    }

    function testReentrantRecipientIsCreditedNotPaidTwice() public {
        submitAs(sub2, JOB, MAX, BUDGET);
        sub2.setMode(Party.Mode.Reenter, address(market));
        sub2.exec(address(manager), abi.encodeCall(AIJobManager.cancel, (JOB)));
        assertEq(market.owed(address(sub2)), BUDGET, "re-entry failed the push: credited");
        assertEq(address(market).balance, BUDGET, "held once");
        sub2.setMode(Party.Mode.Accept, address(0));
        uint256 before = address(sub2).balance;
        sub2.exec(address(market), abi.encodeCall(Guarded.withdrawOwed, ()));
        assertEq(address(sub2).balance - before, BUDGET, "paid once");
        assertEq(address(market).balance, 0, "market empty");
    }

    function testGuardRefusesReentry() public {
        submitAs(sub2, JOB, MAX, BUDGET);
        sub2.setMode(Party.Mode.Probe, address(market));
        uint256 before = address(sub2).balance;
        sub2.exec(address(manager), abi.encodeCall(AIJobManager.cancel, (JOB)));
        assertEq(sub2.probeError(), abi.encodeWithSelector(Guarded.Reentrancy.selector), "re-entry refused");
        assertEq(address(sub2).balance - before, BUDGET, "the payment itself went through");
        assertEq(market.owed(address(sub2)), 0, "nothing credited");
    }

    function testRefusingOperatorStillLosesARejectedChallengersBond() public {
        (,,, bytes32 root) = threeStepTree();
        submit(JOB, MAX, BUDGET);
        vm.prank(scheduler);
        manager.assign(JOB, NODE2);
        joinJurors(3);
        commitAs(op2, JOB, root);
        vm.prank(challenger);
        uint256 id = poc.challenge{value: MIN_BOND}(JOB, claimForStep2(rec(2, "r")));
        op2.setMode(Party.Mode.Reject, address(0));
        judge(id, unanimous(VALID));
        assertEq(poc.owed(address(op2)), MIN_BOND, "bond credited to the operator");
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Committed), "resolution went through");
    }

    function testStakeWithdrawalToARefusingOperatorReverts() public {
        op2.exec(address(registry), abi.encodeCall(NodeCertRegistry.deregister, (NODE2)));
        vm.warp(block.timestamp + 7 days);
        op2.setMode(Party.Mode.Reject, address(0));
        vm.expectRevert(abi.encodeWithSelector(Guarded.TransferFailed.selector, address(op2), MIN_STAKE));
        op2.exec(address(registry), abi.encodeCall(NodeCertRegistry.withdraw, (NODE2)));
        assertEq(registry.getNode(NODE2).stake, MIN_STAKE, "stake kept");
    }

    // -------------------------------------------------------- storage deals

    function testDealValidation() public {
        vm.deal(stranger, 10 ether);
        vm.startPrank(stranger);
        vm.expectRevert(DealMarket.Unfunded.selector);
        market.createDeal(bytes32("cid"), 1, 1, 1, operator);
        vm.expectRevert(DealMarket.InvalidDeal.selector);
        market.createDeal{value: 1}(bytes32(0), 1, 1, 1, operator);
        vm.expectRevert(DealMarket.InvalidDeal.selector);
        market.createDeal{value: 1}(bytes32("cid"), 1, 0, 1, operator);
        vm.expectRevert(DealMarket.InvalidDeal.selector);
        market.createDeal{value: 1}(bytes32("cid"), 1, 1, 0, operator);
        vm.expectRevert(DealMarket.InvalidDeal.selector);
        market.createDeal{value: 1}(bytes32("cid"), 1, 1, 1, address(0));
        vm.expectRevert(abi.encodeWithSelector(DealMarket.UnknownDeal.selector, 1));
        market.claimDeal(1);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.UnknownDeal.selector, 1));
        market.cancelDeal(1);
        vm.stopPrank();
        uint256 huge = uint256(type(uint128).max) + 1;
        vm.deal(stranger, huge);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.EscrowTooLarge.selector, huge));
        market.createDeal{value: huge}(bytes32("cid"), 1, 1, 1, operator);
    }

    function testCancelDealPaysAccruedAndRefundsTheRest() public {
        vm.deal(stranger, 12 ether);
        vm.prank(stranger);
        uint256 id = market.createDeal{value: 12 ether}(bytes32("cid"), 1 << 30, 3, 12, operator);
        assertEq(market.dealCount(), 1, "count");
        vm.warp(block.timestamp + 30 days);
        vm.prank(operator);
        market.claimDeal(id);
        vm.warp(block.timestamp + 75 days); // 105 days: three whole months
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.NotClient.selector, id, operator));
        market.cancelDeal(id);
        uint256 op = operator.balance;
        vm.prank(stranger);
        market.cancelDeal(id);
        assertEq(operator.balance - op, 2 ether, "months two and three");
        assertEq(stranger.balance, 9 ether, "nine months back");
        assertEq(address(market).balance, 0, "nothing held");
        DealMarket.Deal memory d = market.getDeal(id);
        assertTrue(d.cancelled, "cancelled");
        assertEq(d.price, 3 ether, "price is now what was paid");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.DealCancelled.selector, id));
        market.claimDeal(id);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.DealCancelled.selector, id));
        market.cancelDeal(id);
    }

    /// price = paid to the provider + refunded to the client, whenever the
    /// claims and the cancellation happen.
    function testFuzzDealConservation(uint128 price, uint16 months, uint32 t1, uint32 t2, bool cancel) public {
        price = uint128(bound(price, 1, 1_000_000 ether));
        months = uint16(bound(months, 1, 120));
        vm.deal(stranger, price);
        vm.prank(stranger);
        uint256 id = market.createDeal{value: price}(bytes32("cid"), 1, 1, months, operator);
        uint256 op = operator.balance;
        vm.warp(block.timestamp + t1);
        vm.prank(operator);
        try market.claimDeal(id) {} catch {}
        vm.warp(block.timestamp + t2);
        if (cancel) {
            vm.prank(stranger);
            market.cancelDeal(id);
        } else {
            vm.prank(operator);
            try market.claimDeal(id) {} catch {}
        }
        uint256 paid = operator.balance - op;
        uint256 elapsed = (uint256(t1) + t2) / 30 days;
        if (elapsed > months) elapsed = months;
        assertEq(paid, uint256(price) * elapsed / months, "provider paid pro rata");
        assertEq(paid + stranger.balance + address(market).balance, price, "value conserved");
        if (cancel) assertEq(address(market).balance, 0, "cancelled deal holds nothing");
    }

    // ---------------------------------------------------------------- fuzz

    struct Outcome {
        uint256 payout;
        uint256 challengerGain;
        uint256 challengerLoss;
        uint256 bondToOperator;
        uint256 jurorPenalties;
    }

    function everyone() internal view returns (uint256 sum) {
        sum = address(sub2).balance + address(op2).balance + challenger.balance + address(market).balance
            + address(registry).balance + address(poc).balance + address(manager).balance;
        for (uint256 i = 0; i < pool.length; i++) {
            sum += pool[i].balance;
        }
    }

    function jurorStakes() internal view returns (uint256 sum) {
        for (uint256 i = 0; i < pool.length; i++) {
            sum += poc.jurorStakeOf(pool[i]);
        }
    }

    /// Plays a job to the end: 0 finalized, 1 FRAUD, 2 VALID then
    /// finalized, 3 cancelled, 4 failed, 5 UNAVAILABLE, 6 no juror revealed
    /// (dismissed) then finalized, 7 no jury (dismissed after the timeout)
    /// then finalized.
    function play(uint8 outcome, uint64 used) internal returns (Outcome memory r) {
        if (outcome == 3) {
            sub2.exec(address(manager), abi.encodeCall(AIJobManager.cancel, (JOB)));
            return r;
        }
        vm.prank(scheduler);
        manager.assign(JOB, NODE2);
        if (outcome == 4) {
            op2.exec(address(manager), abi.encodeCall(AIJobManager.fail, (JOB)));
            return r;
        }
        if (outcome == 0) {
            commitStepsAs(op2, JOB, used);
            afterPeriod();
            poc.finalize(JOB);
            r.payout = uint256(used) * PRICE;
            return r;
        }
        (,,, bytes32 root) = threeStepTree();
        commitAs(op2, JOB, root);
        vm.prank(challenger);
        uint256 id = poc.challenge{value: MIN_BOND}(JOB, claimForStep2(rec(2, "r")));
        if (outcome == 7) {
            vm.warp(block.timestamp + 4 * VOTE);
            poc.resolve(id);
        } else {
            uint8 v = outcome == 1 ? FRAUD : outcome == 2 ? VALID : outcome == 5 ? UNAVAILABLE : 0;
            judge(id, unanimous(v));
        }
        if (outcome == 1) {
            r.challengerGain = SLASH;
            return r;
        }
        if (outcome == 5) return r;
        if (outcome == 2) {
            r.challengerLoss = MIN_BOND;
            r.bondToOperator = MIN_BOND;
        }
        if (outcome == 6) {
            r.jurorPenalties = 3 * (JUROR_STAKE / 2);
            r.challengerGain = r.jurorPenalties; // nobody voted with the verdict
        }
        afterPeriod();
        poc.finalize(JOB);
        r.payout = 3 * uint256(PRICE);
    }

    /// Every wei of escrow, bond, node stake and juror stake ends where the
    /// rules say, whatever the outcome and whether recipients refuse
    /// payment: escrow in = payout + refund; a slash moves stake to the
    /// challenger; jury penalties move juror stake; contracts keep only open
    /// escrow, stakes and `owed` credits.
    function testFuzzEscrowConservation(
        uint64 maxSteps,
        uint64 used,
        uint96 extra,
        uint8 outcome,
        bool operatorRefuses,
        bool submitterRefuses
    ) public {
        maxSteps = uint64(bound(maxSteps, 3, 10_000_000));
        used = uint64(bound(used, 1, maxSteps));
        outcome = uint8(bound(outcome, 0, 7));
        uint256 budget = uint256(maxSteps) * PRICE + bound(extra, 0, 1000 ether);
        joinJurors(3);
        address o = address(op2);
        address s = address(sub2);
        uint256 total = everyone();
        uint256 s0 = s.balance;
        uint256 o0 = o.balance;
        uint256 c0 = challenger.balance;

        submitAs(sub2, JOB, maxSteps, budget);
        assertEq(address(market).balance, budget, "escrow locked in the market");
        if (operatorRefuses) op2.setMode(Party.Mode.Reject, address(0));
        if (submitterRefuses) sub2.setMode(Party.Mode.Reject, address(0));
        Outcome memory r = play(outcome, used);

        // What each party got, paid or credited.
        assertEq(s.balance + market.owed(s) + budget - s0, budget - r.payout, "submitter: escrow minus payout");
        assertEq(
            o.balance + market.owed(o) + poc.owed(o) - o0, r.payout + r.bondToOperator, "operator: payout (+ a bond)"
        );
        assertEq(challenger.balance + r.challengerLoss - c0, r.challengerGain, "challenger: slash or penalties");
        assertEq(jurorStakes() + r.jurorPenalties, 3 * JUROR_STAKE, "jurors: stakes minus penalties");
        // What the contracts hold is exactly what they owe.
        assertEq(address(market).balance, market.owed(s) + market.owed(o), "market holds only credits");
        assertEq(address(poc).balance, poc.owed(o) + jurorStakes(), "prover holds juror stakes and credits");
        assertEq(address(manager).balance, 0, "manager holds nothing");
        assertEq(
            address(registry).balance,
            registry.getNode(NODE).stake + registry.getNode(NODE2).stake + registry.owed(challenger),
            "registry holds stakes"
        );
        assertEq(everyone(), total, "value conserved");
    }
}
