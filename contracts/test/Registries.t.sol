// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {Roles, Guarded} from "../src/Roles.sol";
import {NodeCertRegistry} from "../src/NodeCertRegistry.sol";
import {DatasetRegistry} from "../src/DatasetRegistry.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";

contract RegistriesTest is Fixture {
    bytes32 constant N2 = bytes32(uint256(2));

    function testRegisterAndViews() public view {
        NodeCertRegistry.Node memory n = registry.getNode(NODE);
        assertEq(n.operator, operator, "operator");
        assertEq(n.gpuCount, 8, "gpus");
        assertEq(n.stake, MIN_STAKE, "stake");
        assertTrue(n.certified && n.active, "certified");
        assertTrue(registry.isEligible(NODE), "eligible");
        assertEq(registry.nodeCount(), 1, "count");
        assertEq(registry.nodeIdAt(0), NODE, "id");
        assertEq(registry.operatorOf(NODE), operator, "operatorOf");
    }

    function testRegisterReverts() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NodeExists.selector, NODE));
        registry.register{value: MIN_STAKE}(NODE, 1, 1, 1, "x", bytes32(0));
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.StakeTooLow.selector, 1, MIN_STAKE));
        registry.register{value: 1}(N2, 1, 1, 1, "x", bytes32(0));
        vm.prank(operator);
        vm.expectRevert(NodeCertRegistry.InvalidCapabilities.selector);
        registry.register{value: MIN_STAKE}(N2, 65, 1, 1, "x", bytes32(0));
        vm.prank(operator);
        vm.expectRevert(NodeCertRegistry.InvalidCapabilities.selector);
        registry.register{value: MIN_STAKE}(N2, 1, 0, 1, "x", bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.UnknownNode.selector, N2));
        registry.getNode(N2);
    }

    function testCertificationIsForAttestors() public {
        bytes32 ATT = registry.ATTESTOR();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, ATT, stranger));
        registry.certify(NODE);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, ATT, stranger));
        registry.revoke(NODE);
        vm.prank(attestor);
        registry.revoke(NODE);
        assertTrue(!registry.isEligible(NODE), "revoked");
        vm.prank(attestor);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.UnknownNode.selector, N2));
        registry.certify(N2);
    }

    function testReputationAndSlashAreForTheSlasher() public {
        bytes32 SL = registry.SLASHER();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, SL, stranger));
        registry.adjustReputation(NODE, 1);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, SL, stranger));
        registry.slash(NODE, 1, stranger);
        registry.grantRole(registry.SLASHER(), admin);
        registry.adjustReputation(NODE, 5);
        registry.adjustReputation(NODE, -9);
        assertEq(registry.getNode(NODE).reputation, 0, "floored at zero");
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.SlashExceedsStake.selector, 2 ether, MIN_STAKE));
        registry.slash(NODE, 2 ether, stranger);
        registry.slash(NODE, 0.25 ether, stranger);
        assertEq(stranger.balance, 0.25 ether, "slashed stake sent");
        assertTrue(!registry.isEligible(NODE), "slashed node loses its certificate");
    }

    function testDeregisterThenWithdrawAfterUnbonding() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NotOperator.selector, NODE, stranger));
        registry.deregister(NODE);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NotDeregistered.selector, NODE));
        registry.withdraw(NODE);
        vm.prank(operator);
        registry.deregister(NODE);
        assertTrue(!registry.isEligible(NODE), "inactive");
        uint64 until = registry.getNode(NODE).unbondingAt;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.StillBonded.selector, until));
        registry.withdraw(NODE);
        vm.warp(until);
        uint256 before = operator.balance;
        vm.prank(operator);
        registry.withdraw(NODE);
        assertEq(operator.balance - before, MIN_STAKE, "stake returned");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NotOperator.selector, NODE, stranger));
        registry.withdraw(NODE);
    }

    function testRolesAreAdminManaged() public {
        bytes32 ADM = registry.ADMIN();
        bytes32 ATT = registry.ATTESTOR();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, ADM, stranger));
        registry.grantRole(ATT, stranger);
        registry.grantRole(ATT, stranger);
        assertTrue(registry.hasRole(registry.ATTESTOR(), stranger), "granted");
        registry.revokeRole(registry.ATTESTOR(), stranger);
        assertTrue(!registry.hasRole(registry.ATTESTOR(), stranger), "revoked");
    }

    function testDatasets() public {
        vm.prank(stranger);
        datasets.register(bytes32("d1"), bytes32("cid"), bytes32("lic"), 1024, "nlp,english");
        DatasetRegistry.Dataset memory d = datasets.get(bytes32("d1"));
        assertEq(d.owner, stranger, "owner");
        assertEq(d.contentId, bytes32("cid"), "content");
        assertEq(datasets.count(), 1, "count");
        assertEq(datasets.idAt(0), bytes32("d1"), "idAt");
        vm.expectRevert(abi.encodeWithSelector(DatasetRegistry.DatasetExists.selector, bytes32("d1")));
        datasets.register(bytes32("d1"), bytes32("cid"), bytes32(0), 1, "");
        vm.expectRevert(DatasetRegistry.InvalidDataset.selector);
        datasets.register(bytes32("d2"), bytes32(0), bytes32(0), 1, "");
        vm.expectRevert(abi.encodeWithSelector(DatasetRegistry.UnknownDataset.selector, bytes32("zz")));
        datasets.get(bytes32("zz"));
    }

    function testModelsAndLineage() public {
        datasets.register(bytes32("d1"), bytes32("cid"), bytes32(0), 1, "");
        bytes32 REG = models.REGISTRAR();
        vm.prank(stranger);
        models.register(
            bytes32("m1"), bytes32("w1"), "mlp", bytes32("d1"), bytes32("code"), "v1", bytes32(0), bytes32(0)
        );
        // A model produced by a job: only the registrar (the engine).
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, REG, stranger));
        models.register(
            bytes32("m2"), bytes32("w2"), "mlp", bytes32("d1"), bytes32("code"), "v2", bytes32("m1"), bytes32("job")
        );
        models.register(
            bytes32("m2"), bytes32("w2"), "mlp", bytes32("d1"), bytes32("code"), "v2", bytes32("m1"), bytes32("job")
        );
        models.register(
            bytes32("m3"), bytes32("w3"), "mlp", bytes32(0), bytes32("code"), "v3", bytes32("m2"), bytes32(0)
        );
        bytes32[] memory chain = models.lineage(bytes32("m3"));
        assertEq(chain.length, 3, "lineage length");
        assertEq(chain[0], bytes32("m3"), "self first");
        assertEq(chain[2], bytes32("m1"), "root last");
        assertEq(models.get(bytes32("m2")).jobId, bytes32("job"), "producing job");
        assertEq(models.count(), 3, "count");
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ModelExists.selector, bytes32("m1")));
        models.register(bytes32("m1"), bytes32("w"), "a", bytes32(0), bytes32(0), "v", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownParent.selector, bytes32("nope")));
        models.register(bytes32("m4"), bytes32("w"), "a", bytes32(0), bytes32(0), "v", bytes32("nope"), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownDataset.selector, bytes32("nope")));
        models.register(bytes32("m4"), bytes32("w"), "a", bytes32("nope"), bytes32(0), "v", bytes32(0), bytes32(0));
        vm.expectRevert(ModelRegistry.InvalidModel.selector);
        models.register(bytes32("m4"), bytes32(0), "a", bytes32(0), bytes32(0), "v", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, bytes32("zz")));
        models.lineage(bytes32("zz"));
    }

    // ------------------------------------------------------ more node rules

    function testRegisterRejectsBadInput() public {
        vm.startPrank(operator);
        vm.expectRevert(NodeCertRegistry.InvalidNodeId.selector);
        registry.register{value: MIN_STAKE}(bytes32(0), 1, 1, 1, "x", bytes32(0));
        bytes memory longRegion = new bytes(65);
        vm.expectRevert(NodeCertRegistry.InvalidCapabilities.selector);
        registry.register{value: MIN_STAKE}(N2, 1, 1, 1, string(longRegion), bytes32(0));
        // A CPU-only node (no GPUs, no GPU memory) is fine.
        registry.register{value: MIN_STAKE}(N2, 0, 0, 5, "eu", bytes32(0));
        vm.stopPrank();
        uint256 huge = uint256(type(uint128).max) + 1;
        vm.deal(stranger, huge);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.StakeTooHigh.selector, huge));
        registry.register{value: huge}(bytes32(uint256(3)), 1, 1, 1, "x", bytes32(0));
        vm.expectRevert(Roles.ZeroAdmin.selector);
        new NodeCertRegistry(address(0), 1, 1);
    }

    function testNodeMetadata() public {
        vm.prank(operator);
        registry.setMetadata(NODE, "NVIDIA H100 80GB HBM3", "https://node.example/artha");
        NodeCertRegistry.NodeMetadata memory m = registry.metadataOf(NODE);
        assertEq(keccak256(bytes(m.gpuModel)), keccak256("NVIDIA H100 80GB HBM3"), "gpu model");
        assertEq(keccak256(bytes(m.endpoint)), keccak256("https://node.example/artha"), "endpoint");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NotOperator.selector, NODE, stranger));
        registry.setMetadata(NODE, "x", "y");
        vm.prank(operator);
        vm.expectRevert(NodeCertRegistry.InvalidMetadata.selector);
        registry.setMetadata(NODE, string(new bytes(65)), "y");
        vm.prank(operator);
        vm.expectRevert(NodeCertRegistry.InvalidMetadata.selector);
        registry.setMetadata(NODE, "x", string(new bytes(257)));
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.UnknownNode.selector, N2));
        registry.metadataOf(N2);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.UnknownNode.selector, N2));
        registry.setMetadata(N2, "x", "y");
    }

    function testNodeIdsPage() public {
        for (uint256 i = 2; i <= 5; i++) {
            vm.prank(operator);
            registry.register{value: MIN_STAKE}(bytes32(i), 1, 1, 1, "x", bytes32(0));
        }
        assertEq(registry.nodeCount(), 5, "count");
        bytes32[] memory p = registry.nodeIds(0, 2);
        assertEq(p.length, 2, "first page");
        assertEq(p[0], NODE, "registration order");
        assertEq(p[1], bytes32(uint256(2)), "second");
        p = registry.nodeIds(3, 10);
        assertEq(p.length, 2, "last page is short");
        assertEq(p[1], bytes32(uint256(5)), "last");
        assertEq(registry.nodeIds(5, 10).length, 0, "past the end");
        assertEq(registry.nodeIds(99, 1).length, 0, "far past the end");
        assertEq(registry.nodeIds(0, 0).length, 0, "zero limit");
    }

    function testASlashedNodeIsSlashedForGood() public {
        registry.grantRole(registry.SLASHER(), admin);
        assertTrue(!registry.getNode(NODE).slashed, "not slashed yet");
        registry.slash(NODE, 0.5 ether, stranger);
        assertTrue(registry.getNode(NODE).slashed, "marked slashed");
        assertTrue(!registry.isEligible(NODE), "slashed: decertified and under-staked");
        vm.prank(operator);
        vm.expectRevert(NodeCertRegistry.Unfunded.selector);
        registry.addStake(NODE);
        vm.prank(operator);
        registry.addStake{value: 0.5 ether}(NODE);
        assertEq(registry.getNode(NODE).stake, MIN_STAKE, "topped up");
        assertTrue(!registry.isEligible(NODE), "a top-up does not restore it");
        // Neither the attestor nor the admin (who can grant itself ATTESTOR)
        // can certify it again; no function clears the mark.
        vm.prank(attestor);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NodeWasSlashed.selector, NODE));
        registry.certify(NODE);
        registry.grantRole(registry.ATTESTOR(), admin);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NodeWasSlashed.selector, NODE));
        registry.certify(NODE);
        registry.revoke(NODE);
        assertTrue(registry.getNode(NODE).slashed && !registry.isEligible(NODE), "still slashed");
        // A zero slash (no stake left to take) marks the node too.
        vm.prank(operator);
        registry.register{value: MIN_STAKE}(bytes32("n3"), 1, 1, 1, "x", bytes32(0));
        registry.certify(bytes32("n3"));
        assertTrue(registry.isEligible(bytes32("n3")), "eligible");
        registry.slash(bytes32("n3"), 0, stranger);
        assertTrue(!registry.isEligible(bytes32("n3")), "zero slash: slashed for good");
        vm.prank(operator);
        registry.deregister(NODE);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NotActive.selector, NODE));
        registry.addStake{value: 1}(NODE);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.UnknownNode.selector, N2));
        registry.addStake{value: 1}(N2);
        vm.prank(operator);
        registry.register{value: MIN_STAKE}(N2, 1, 1, 1, "x", bytes32(0));
        uint256 huge = uint256(type(uint128).max);
        vm.deal(stranger, huge);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.StakeTooHigh.selector, huge + MIN_STAKE));
        registry.addStake{value: huge}(N2);
    }

    function testUnbondingNodeCanStillBeSlashedAndWithdrawsOnce() public {
        registry.grantRole(registry.SLASHER(), admin);
        vm.prank(operator);
        registry.deregister(NODE);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NotActive.selector, NODE));
        registry.deregister(NODE);
        registry.slash(NODE, 0.25 ether, stranger);
        vm.warp(block.timestamp + 7 days);
        uint256 before = operator.balance;
        vm.prank(operator);
        registry.withdraw(NODE);
        assertEq(operator.balance - before, MIN_STAKE - 0.25 ether, "what is left after the slash");
        assertEq(address(registry).balance, 0, "registry holds nothing");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NoStake.selector, NODE));
        registry.withdraw(NODE);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.SlashExceedsStake.selector, 1, 0));
        registry.slash(NODE, 1, stranger);
    }

    function testReputationIsClamped() public {
        registry.grantRole(registry.SLASHER(), admin);
        for (uint256 i = 0; i < 3; i++) {
            registry.adjustReputation(NODE, type(int32).max);
        }
        assertEq(registry.getNode(NODE).reputation, type(uint32).max, "capped at 2^32 - 1");
        registry.adjustReputation(NODE, type(int32).min);
        assertEq(registry.getNode(NODE).reputation, uint256(type(uint32).max) - 2 ** 31, "down");
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.UnknownNode.selector, N2));
        registry.adjustReputation(N2, 1);
    }

    function testRenounceRole() public {
        bytes32 ATT = registry.ATTESTOR();
        vm.prank(attestor);
        registry.renounceRole(ATT);
        assertTrue(!registry.hasRole(ATT, attestor), "renounced");
        vm.prank(attestor);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, ATT, attestor));
        registry.certify(NODE);
        bytes32 ADM = registry.ADMIN();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, ADM, stranger));
        registry.revokeRole(ATT, attestor);
    }

    // --------------------------------------------------- registries, more

    function testDatasetLimitsAndPaging() public {
        vm.expectRevert(DatasetRegistry.InvalidDataset.selector);
        datasets.register(bytes32(0), bytes32("cid"), bytes32(0), 1, "");
        vm.expectRevert(DatasetRegistry.InvalidDataset.selector);
        datasets.register(bytes32("d"), bytes32("cid"), bytes32(0), 1, string(new bytes(257)));
        datasets.register(bytes32("d"), bytes32("cid"), bytes32(0), 1, string(new bytes(256)));
        datasets.register(bytes32("e"), bytes32("cid"), bytes32(0), 1, "");
        assertTrue(datasets.exists(bytes32("d")) && !datasets.exists(bytes32("z")), "exists");
        bytes32[] memory p = datasets.ids(1, 5);
        assertEq(p.length, 1, "page");
        assertEq(p[0], bytes32("e"), "order");
        assertEq(datasets.ids(2, 5).length, 0, "past the end");
    }

    function testLineageIsBounded() public {
        bytes32 parent = bytes32(0);
        for (uint256 i = 1; i <= 70; i++) {
            models.register(bytes32(i), bytes32("w"), "mlp", bytes32(0), bytes32(0), "v", parent, bytes32(0));
            parent = bytes32(i);
        }
        bytes32[] memory chain = models.lineage(bytes32(uint256(70)));
        assertEq(chain.length, models.MAX_LINEAGE(), "at most MAX_LINEAGE ids");
        assertEq(chain[0], bytes32(uint256(70)), "self first");
        assertEq(chain[63], bytes32(uint256(7)), "nearest 64");
        assertEq(models.lineage(bytes32(uint256(1))).length, 1, "a root model alone");
        assertEq(models.ids(68, 10).length, 2, "page");
        assertTrue(models.exists(bytes32(uint256(1))) && !models.exists(bytes32("z")), "exists");
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, bytes32("z")));
        models.get(bytes32("z"));
    }

    function testModelLabelsAreBounded() public {
        vm.expectRevert(ModelRegistry.InvalidModel.selector);
        models.register(bytes32(0), bytes32("w"), "a", bytes32(0), bytes32(0), "v", bytes32(0), bytes32(0));
        vm.expectRevert(ModelRegistry.InvalidModel.selector);
        models.register(
            bytes32("m"), bytes32("w"), string(new bytes(65)), bytes32(0), bytes32(0), "v", bytes32(0), bytes32(0)
        );
        vm.expectRevert(ModelRegistry.InvalidModel.selector);
        models.register(
            bytes32("m"), bytes32("w"), "a", bytes32(0), bytes32(0), string(new bytes(65)), bytes32(0), bytes32(0)
        );
    }
}
